"""Enterprise consents in the state DB, with their signed receipts and the risk notices shown.

`live_for` answers "which of these subjects consent now" for thousands of subjects in one query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from policies.facts import Consent
from saferoom.state import POINT_LOOKUPS, StateStore

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS consent_seq;
CREATE TABLE IF NOT EXISTS consents (
    seq BIGINT NOT NULL DEFAULT nextval('consent_seq'), id VARCHAR PRIMARY KEY,
    subject_uscc VARCHAR NOT NULL, grantee_bank_id VARCHAR NOT NULL, purpose VARCHAR NOT NULL,
    datasets VARCHAR[] NOT NULL, fields VARCHAR[], expires_at TIMESTAMPTZ NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL, revoked_at TIMESTAMPTZ, notices_digest VARCHAR NOT NULL,
    receipt_payload VARCHAR NOT NULL, receipt_signature VARCHAR NOT NULL);
-- The notice texts shown at a grant, once per distinct set (content-addressed by digest).
-- Verification looks consents up by subject, often one subject at a time.
CREATE INDEX IF NOT EXISTS consents_by_subject ON consents (subject_uscc);
CREATE TABLE IF NOT EXISTS consent_notices (digest VARCHAR PRIMARY KEY, notices JSON NOT NULL);
"""
_COLUMNS = ("seq, id, subject_uscc, grantee_bank_id, purpose, datasets, fields, expires_at, "
            "granted_at, revoked_at, notices_digest, receipt_payload, receipt_signature")
_SELECT = f"SELECT {_COLUMNS} FROM consents"  # noqa: S608 (constants only)


@dataclass(frozen=True, slots=True)
class StoredConsent:
    """A consent with its place in the list (`seq`, the paging cursor) and its signed receipt."""

    seq: int
    consent: Consent
    receipt_payload: str
    receipt_signature: str


def _consent(row: Sequence[Any]) -> Consent:
    return Consent(
        id=row[1], subject_uscc=row[2], grantee_bank_id=row[3], purpose=row[4],
        datasets=frozenset(row[5]), fields=None if row[6] is None else frozenset(row[6]),
        expires_at=row[7], granted_at=row[8], revoked_at=row[9], notices_digest=row[10],
    )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What the decisions need, without the receipts: a 10,000-subject batch reads ~10,000 rows.
_SELECT_FACTS = ("SELECT id, subject_uscc, grantee_bank_id, purpose, datasets, fields, "
                 "expires_at, granted_at, revoked_at, notices_digest FROM consents")


def _consents(table: pa.Table) -> list[Consent]:
    """Consents from `_SELECT_FACTS` columns; scopes repeat across a batch, so each distinct
    one becomes a frozenset once."""
    scopes: dict[tuple[str, ...] | None, frozenset[str] | None] = {None: None}

    def scope(values: list[str] | None) -> frozenset[str] | None:
        key = None if values is None else tuple(values)
        found = scopes.get(key)
        if found is None and key is not None:
            found = scopes[key] = frozenset(key)
        return found

    instants: dict[int | None, datetime | None] = {None: None}

    def instant(micros: int | None) -> datetime | None:
        # Exact to the microsecond (expiry is decided at that grain), and ~10x cheaper than
        # Arrow making zone-aware datetimes itself.
        found = instants.get(micros)
        if found is None and micros is not None:
            found = instants[micros] = EPOCH + timedelta(microseconds=micros)
        return found

    columns: list[list[Any]] = []
    for i, field in enumerate(table.schema):
        column = table.column(i)
        if pa.types.is_timestamp(field.type):
            columns.append([instant(m) for m in column.cast(pa.int64()).to_pylist()])
        else:
            columns.append(column.to_pylist())
    return [
        Consent(id=c_id, subject_uscc=subject, grantee_bank_id=bank, purpose=purpose,
                datasets=scope(datasets) or frozenset(), fields=scope(fields),
                expires_at=expires, granted_at=granted, revoked_at=revoked,
                notices_digest=notices)
        for c_id, subject, bank, purpose, datasets, fields, expires, granted, revoked, notices
        in zip(*columns, strict=True)
    ]


def _stored(row: Sequence[Any]) -> StoredConsent:
    return StoredConsent(row[0], _consent(row), row[11], row[12])


class ConsentStore:
    """Grants, revocations and the read API that verification and scoring use."""

    def __init__(self, state: StateStore) -> None:
        self._state = state
        state.ensure_schema(SCHEMA)

    def add(self, consent: Consent, notices: Mapping[str, str], payload: str,
            signature: str) -> None:
        """Store a grant and the notices it acknowledged; call inside the auditing transaction."""
        c = consent
        self._state.run(
            "INSERT INTO consent_notices VALUES (?, ?) ON CONFLICT DO NOTHING",
            [c.notices_digest, json.dumps(dict(notices), ensure_ascii=False)],
        )
        self._state.run(
            f"INSERT INTO consents ({_COLUMNS.removeprefix('seq, ')}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [c.id, c.subject_uscc, c.grantee_bank_id, c.purpose, sorted(c.datasets),
             None if c.fields is None else sorted(c.fields), c.expires_at, c.granted_at,
             c.revoked_at, c.notices_digest, payload, signature],
        )

    def get(self, consent_id: str) -> StoredConsent | None:
        rows = self._state.query(_SELECT + " WHERE id = ?", [consent_id])
        return _stored(rows[0]) if rows else None

    def notices(self, digest: str) -> dict[str, str] | None:
        """The notice texts a grant acknowledged, by the digest in its receipt."""
        rows = self._state.query("SELECT notices FROM consent_notices WHERE digest = ?", [digest])
        return json.loads(rows[0][0]) if rows else None

    def page(self, *, subject: str | None = None, grantee: str | None = None, after: int = 0,
             limit: int = 100) -> list[StoredConsent]:
        """One subject's consents, or those granted to one bank, in grant order after `after`."""
        if (subject is None) == (grantee is None):
            raise ValueError("give exactly one of subject and grantee")
        column, value = ("subject_uscc", subject) if subject is not None else (
            "grantee_bank_id", grantee)
        rows = self._state.query(
            _SELECT + f" WHERE {column} = ? AND seq > ? ORDER BY seq LIMIT ?",
            [value, after, limit],
        )
        return [_stored(r) for r in rows]

    def revoke(self, consent_id: str, subject: str, at: datetime) -> Consent | None:
        """Revoke as of `at` (a repeated revocation keeps the first instant).

        None when there is no such consent or `subject` did not grant it: the two look alike.
        """
        self._state.run(
            "UPDATE consents SET revoked_at = coalesce(revoked_at, ?) "
            "WHERE id = ? AND subject_uscc = ?",
            [at, consent_id, subject],
        )
        found = self.get(consent_id)
        if found is None or found.consent.subject_uscc != subject:
            return None
        return found.consent

    def live_for(self, bank_id: str, subjects: Sequence[str], purpose: str,
                 now: datetime) -> list[Consent]:
        """The consents of `subjects` that serve `bank_id` for `purpose` at `now`, in one query.

        Pass the instant the request started: a revocation at or before it binds the request.
        Scope (datasets, fields) is for the decisions (`Consent.covers`) to judge.
        """
        if not subjects:
            return []
        live = (" grantee_bank_id = ? AND purpose = ? AND granted_at <= ? AND ? < expires_at"
                " AND (revoked_at IS NULL OR ? < revoked_at) ORDER BY seq")
        params = [bank_id, purpose, now, now, now]
        if len(subjects) <= POINT_LOOKUPS:
            # A few subjects: filter on the subject alone so DuckDB uses the index (any other
            # condition turns it into a scan), then keep the live ones here.
            marks = ", ".join("?" for _ in subjects)
            found = [_consent(r) for r in self._state.query(
                _SELECT + f" WHERE subject_uscc IN ({marks}) ORDER BY seq", list(subjects))]
            return [c for c in found if c.serves(bank_id, c.subject_uscc, purpose, now)]
        found = self._state.table_joined(
            "wanted", pa.table({"subject": pa.array(subjects, pa.string())}),
            _SELECT_FACTS + " SEMI JOIN wanted w ON w.subject = subject_uscc WHERE" + live,
            params)
        return _consents(found)
