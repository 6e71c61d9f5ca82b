"""Data-sharing agreements in the state DB: which bank may use which datasets for which purposes.

Ending an agreement stamps `ended_at`; rows are never deleted, so the record of the terms stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from policies.facts import Agreement
from saferoom.state import StateStore

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS agreement_seq;
CREATE TABLE IF NOT EXISTS agreements (
    seq BIGINT NOT NULL DEFAULT nextval('agreement_seq'), id VARCHAR PRIMARY KEY,
    bank_id VARCHAR NOT NULL, datasets VARCHAR[] NOT NULL, purposes VARCHAR[] NOT NULL,
    valid_until TIMESTAMPTZ NOT NULL, created_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ);
"""
_SELECT = "SELECT id, bank_id, datasets, purposes, valid_until, ended_at FROM agreements"


def _agreement(row: Sequence[Any]) -> Agreement:
    return Agreement(id=row[0], bank_id=row[1], datasets=frozenset(row[2]),
                     purposes=frozenset(row[3]), valid_until=row[4], ended_at=row[5])


class AgreementStore:
    """Reads return `policies.facts.Agreement`, ready for the decisions to judge liveness."""

    def __init__(self, state: StateStore) -> None:
        self._state = state
        state.ensure_schema(SCHEMA)

    def add(self, agreement: Agreement, created_at: datetime) -> None:
        self._state.run(
            "INSERT INTO agreements (id, bank_id, datasets, purposes, valid_until, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [agreement.id, agreement.bank_id, sorted(agreement.datasets),
             sorted(agreement.purposes), agreement.valid_until, created_at],
        )

    def get(self, agreement_id: str) -> Agreement | None:
        rows = self._state.query(_SELECT + " WHERE id = ?", [agreement_id])
        return _agreement(rows[0]) if rows else None

    def all(self) -> list[Agreement]:
        return [_agreement(r) for r in self._state.query(_SELECT + " ORDER BY seq")]

    def for_bank(self, bank_id: str) -> list[Agreement]:
        """Every agreement with `bank_id`, ended ones included: `Agreement.is_live(now)` judges."""
        rows = self._state.query(_SELECT + " WHERE bank_id = ? ORDER BY seq", [bank_id])
        return [_agreement(r) for r in rows]

    def end(self, agreement_id: str, at: datetime) -> Agreement | None:
        """Stamp `ended_at` (the first end stands); None for an unknown id."""
        self._state.run(
            "UPDATE agreements SET ended_at = coalesce(ended_at, ?) WHERE id = ?",
            [at, agreement_id],
        )
        return self.get(agreement_id)
