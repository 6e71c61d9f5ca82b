"""Objections to records, in the state DB; the claim and reason texts are sealed at rest.

Those texts may quote the disputed values, so they are sealed under the dataset's own data key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from saferoom.crypto import MasterKey, seal, unseal
from saferoom.dataset_store import wrap_context
from saferoom.state import DatasetRecord, StateStore

Status = Literal["open", "upheld", "rejected"]

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS objection_seq;
CREATE TABLE IF NOT EXISTS objections (
    seq BIGINT NOT NULL DEFAULT nextval('objection_seq'), id VARCHAR PRIMARY KEY,
    subject_uscc VARCHAR NOT NULL, dataset_id VARCHAR NOT NULL, field VARCHAR NOT NULL,
    claim BLOB NOT NULL, status VARCHAR NOT NULL, filed_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ, resolved_by VARCHAR, reason BLOB, corrected_version INTEGER);
"""
_SELECT = (
    "SELECT o.seq, o.id, o.subject_uscc, o.dataset_id, d.name, o.field, o.claim, o.status, "
    "o.filed_at, o.resolved_at, o.resolved_by, o.reason, o.corrected_version, d.data_key "
    "FROM objections o JOIN datasets d ON d.id = o.dataset_id"
)


@dataclass(frozen=True, slots=True)
class Objection:
    seq: int
    id: str
    subject_uscc: str
    dataset_id: str
    dataset: str
    field: str
    claim: str
    status: Status
    filed_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    reason: str | None
    corrected_version: int | None


def _aad(objection_id: str, part: str) -> bytes:
    return f"objection|{objection_id}|{part}".encode()


class ObjectionStore:
    """Files, lists and resolves objections; texts leave this class only in memory."""

    def __init__(self, state: StateStore, master: MasterKey) -> None:
        self._state = state
        self._master = master
        state.ensure_schema(SCHEMA)

    def _key(self, dataset_id: str, wrapped: bytes) -> bytes:
        return self._master.unwrap(bytes(wrapped), wrap_context(dataset_id))

    def _objection(self, row: Sequence[Any]) -> Objection:
        key = self._key(row[3], row[13])
        reason = None if row[11] is None else unseal(key, bytes(row[11]), _aad(row[1], "reason"))
        return Objection(
            seq=row[0], id=row[1], subject_uscc=row[2], dataset_id=row[3], dataset=row[4],
            field=row[5], claim=unseal(key, bytes(row[6]), _aad(row[1], "claim")).decode(),
            status=row[7], filed_at=row[8], resolved_at=row[9], resolved_by=row[10],
            reason=None if reason is None else reason.decode(), corrected_version=row[12],
        )

    def add(self, objection_id: str, subject: str, d: DatasetRecord, field: str, claim: str,
            at: datetime) -> Objection:
        sealed = seal(self._key(d.id, d.data_key), claim.encode(), _aad(objection_id, "claim"))
        self._state.run(
            "INSERT INTO objections (id, subject_uscc, dataset_id, field, claim, status, "
            "filed_at) VALUES (?, ?, ?, ?, ?, 'open', ?)",
            [objection_id, subject, d.id, field, sealed, at],
        )
        found = self.get(objection_id)
        assert found is not None
        return found

    def get(self, objection_id: str) -> Objection | None:
        rows = self._state.query(_SELECT + " WHERE o.id = ?", [objection_id])
        return self._objection(rows[0]) if rows else None

    def page(self, *, subject: str | None = None, owner: str | None = None, after: int = 0,
             limit: int = 100) -> list[Objection]:
        """One subject's objections, or those on datasets `owner` holds, in filing order."""
        if (subject is None) == (owner is None):
            raise ValueError("give exactly one of subject and owner")
        where, value = ("o.subject_uscc", subject) if subject is not None else (
            "d.owner_id", owner)
        rows = self._state.query(
            _SELECT + f" WHERE {where} = ? AND o.seq > ? ORDER BY o.seq LIMIT ?",
            [value, after, limit],
        )
        return [self._objection(r) for r in rows]

    def resolve(self, o: Objection, d: DatasetRecord, status: Status, reason: str | None,
                by: str, at: datetime, corrected_version: int | None) -> Objection | None:
        """Close an open objection; None if it was closed meanwhile (the first resolution wins)."""
        sealed = None if reason is None else seal(
            self._key(d.id, d.data_key), reason.encode(), _aad(o.id, "reason"))
        rows = self._state.query(
            "UPDATE objections SET status = ?, reason = ?, resolved_by = ?, resolved_at = ?, "
            "corrected_version = ? WHERE id = ? AND status = 'open' RETURNING id",
            [status, sealed, by, at, corrected_version, o.id],
        )
        return self.get(o.id) if rows else None
