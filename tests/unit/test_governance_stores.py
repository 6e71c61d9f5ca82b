"""The read API other features use: `ConsentStore.live_for` and `AgreementStore.for_bank`.

Instants at the edges are exact, and ten thousand subjects are answered in one query.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from policies.facts import Agreement, Consent
from saferoom.agreement_store import AgreementStore
from saferoom.consent_store import ConsentStore
from saferoom.state import POINT_LOOKUPS, StateStore

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MICRO = timedelta(microseconds=1)


@pytest.fixture
def state(tmp_path: Path):
    s = StateStore(tmp_path / "state.duckdb")
    yield s
    s.close()


def consent(cid: str, subject: str, **changes) -> Consent:
    fields = {"id": cid, "subject_uscc": subject, "grantee_bank_id": "bank_a",
              "purpose": "loan_application", "datasets": frozenset({"tax"}), "fields": None,
              "expires_at": NOW + timedelta(days=30), "granted_at": NOW - timedelta(days=1),
              "notices_digest": "sha256:00", **changes}
    return Consent(**fields)


def test_live_for_matches_consent_is_live_at_every_edge(state: StateStore):
    store = ConsentStore(state)
    cases = [
        consent("live", "s1"),
        consent("granted_now", "s2", granted_at=NOW),
        consent("granted_later", "s3", granted_at=NOW + MICRO),
        consent("expires_now", "s4", expires_at=NOW),
        consent("expires_next", "s5", expires_at=NOW + MICRO),
        consent("revoked_now", "s6", revoked_at=NOW),
        consent("revoked_later", "s7", revoked_at=NOW + MICRO),
        consent("other_bank", "s1", grantee_bank_id="bank_b"),
        consent("other_purpose", "s1", purpose="credit_modeling"),
        consent("not_asked", "s9"),
    ]
    for c in cases:
        store.add(c, {"tax": "notice"}, "{}", "00")
    asked = [f"s{i}" for i in range(1, 8)]
    found = store.live_for("bank_a", asked, "loan_application", NOW)
    expected = [c for c in cases if c.subject_uscc in asked
                and c.serves("bank_a", c.subject_uscc, "loan_application", NOW)]
    assert found == expected
    assert {c.id for c in found} == {"live", "granted_now", "expires_next", "revoked_later"}
    # Past POINT_LOOKUPS subjects the batch path (one join, Arrow columns) gives the same.
    many = asked + [f"x{i}" for i in range(POINT_LOOKUPS)]
    assert store.live_for("bank_a", many, "loan_application", NOW) == expected
    assert store.live_for("bank_a", [], "loan_application", NOW) == []


def test_live_for_ten_thousand_subjects_is_one_query(state: StateStore, monkeypatch):
    store = ConsentStore(state)
    # Bulk-load 50,000 consents: every fifth one revoked, a sprinkle for another bank.
    state.run(
        "INSERT INTO consents (id, subject_uscc, grantee_bank_id, purpose, datasets, fields, "
        "expires_at, granted_at, revoked_at, notices_digest, receipt_payload, receipt_signature) "
        "SELECT 'c' || i, 's' || i, CASE WHEN i % 97 = 0 THEN 'bank_b' ELSE 'bank_a' END, "
        "'loan_application', ['tax'], NULL, ?, ?, CASE WHEN i % 5 = 0 THEN ? END, 'd', '{}', '00' "
        "FROM range(50000) t(i)",
        [NOW + timedelta(days=30), NOW - timedelta(days=1), NOW - timedelta(hours=1)],
    )
    subjects = [f"s{i}" for i in range(0, 20000, 2)]
    ran: list[str] = []

    def counted(name: str):
        real = getattr(state, name)

        def call(*args, **kwargs):
            ran.append(name)
            return real(*args, **kwargs)

        return call

    for name in ("query", "query_joined", "table_joined", "run", "transaction"):  # every way to reach the DB
        monkeypatch.setattr(state, name, counted(name))
    found = store.live_for("bank_a", subjects, "loan_application", NOW)
    expected = {f"s{i}" for i in range(0, 20000, 2) if i % 5 and i % 97}
    assert {c.subject_uscc for c in found} == expected
    assert len(ran) == 1 and ran[0] in {"query", "query_joined", "table_joined"}, ran  # one query, not one each


def test_for_bank_returns_ended_agreements_for_the_decisions_to_judge(state: StateStore):
    store = AgreementStore(state)
    terms = {"datasets": frozenset({"tax"}), "purposes": frozenset({"credit_research"}),
             "valid_until": NOW + timedelta(days=1)}
    store.add(Agreement(id="a1", bank_id="bank_a", **terms), NOW)
    store.add(Agreement(id="a2", bank_id="bank_b", **terms), NOW)
    ended = store.end("a1", NOW)
    assert ended is not None and ended.ended_at == NOW
    assert store.end("a1", NOW + MICRO) == ended  # the first end stands
    assert store.end("nope", NOW) is None
    (a1,) = store.for_bank("bank_a")
    assert a1 == ended and not a1.is_live(NOW) and a1.is_live(NOW - MICRO)
    assert [a.id for a in store.all()] == ["a1", "a2"]
