"""Tokens: 256-bit secrets, stored as hashes, refused unless whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from saferoom.auth import Authenticator, issue_token
from saferoom.errors import Unauthenticated
from saferoom.state import PrincipalRecord, StateStore


@pytest.fixture
def state(tmp_path: Path):
    s = StateStore(tmp_path / "state.duckdb")
    yield s
    s.close()


def test_tokens_are_long_random_and_stored_hashed(state: StateStore) -> None:
    issued = [issue_token() for _ in range(50)]
    assert len({t.token for t in issued}) == 50
    t = issued[0]
    secret = t.token.split(".", 1)[1]
    assert len(secret) >= 43  # 32 bytes urlsafe-base64
    state.add_principal(PrincipalRecord("ban_1", "bank", "b", None, t.token_id, t.token_hash))
    raw = (state._con.execute("SELECT * FROM principals").fetchall())
    assert secret not in str(raw)
    auth = Authenticator(state, None)
    assert auth.authenticate(f"Bearer {t.token}").id == "ban_1"
    for bad in (None, "", "Bearer ", t.token, f"Bearer {t.token}x", f"Bearer {t.token[:-1]}",
                f"Bearer {issued[1].token}", "Bearer sr_zz.zz"):
        with pytest.raises(Unauthenticated):
            auth.authenticate(bad)


def test_environment_admin_token(state: StateStore) -> None:
    auth = Authenticator(state, "a-long-random-admin-token-for-tests")
    assert auth.authenticate("Bearer a-long-random-admin-token-for-tests").role == "admin"
    with pytest.raises(Unauthenticated):
        auth.authenticate("Bearer a-long-random-admin-token-for-test")
