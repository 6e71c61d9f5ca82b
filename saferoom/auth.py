"""Bearer tokens: at least 256 random bits, shown once, stored as hashes, compared in constant time.

A token is `sr_<token id>.<secret>`: the id finds the principal, the secret's hash must match.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from policies.roles import Role
from saferoom.errors import Unauthenticated
from saferoom.state import PrincipalRecord, StateStore

ENV_ADMIN_ID = "admin"


@dataclass(frozen=True)
class Principal:
    id: str
    role: Role
    name: str
    uscc: str | None = None

    def public(self) -> dict[str, str]:
        out = {"id": self.id, "role": self.role, "name": self.name}
        if self.uscc is not None:
            out["uscc"] = self.uscc
        return out


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    token_hash: bytes


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def issue_token() -> IssuedToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)  # 256 bits
    return IssuedToken(f"sr_{token_id}.{secret}", token_id, _hash(secret))


class Authenticator:
    """Resolves a bearer token to a principal; the environment's admin token is one more."""

    def __init__(self, state: StateStore, admin_token: str | None) -> None:
        self._state = state
        self._admin_hash = _hash(admin_token) if admin_token else None
        self._cache: dict[str, PrincipalRecord] = {}

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthenticated("missing bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        if self._admin_hash is not None and hmac.compare_digest(_hash(token), self._admin_hash):
            return Principal(ENV_ADMIN_ID, "admin", "admin (environment)")
        token_id, sep, secret = token.removeprefix("sr_").partition(".")
        if not token.startswith("sr_") or not sep or len(token_id) != 16:
            raise Unauthenticated("unknown token")
        record = self._cache.get(token_id) or self._state.principal_by_token_id(token_id)
        # Compare a hash even when the id is unknown, so timing does not tell which part failed.
        expected = record.token_hash if record else b"\x00" * 32
        if not hmac.compare_digest(_hash(secret), expected) or record is None:
            raise Unauthenticated("unknown token")
        self._cache[token_id] = record
        return Principal(record.id, record.role, record.name, record.uscc)  # type: ignore[arg-type]
