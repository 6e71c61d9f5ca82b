"""Which distinct values each bank has tested on each subject's field: the extraction ledger.

It survives restarts (DuckDB), and reads and writes happen in one locked transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from policies.verification import Asked
from saferoom.state import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS verify_asked (
    bank_id VARCHAR NOT NULL, subject VARCHAR NOT NULL, field VARCHAR NOT NULL,
    scope VARCHAR NOT NULL, value_key VARCHAR NOT NULL, asked_at TIMESTAMPTZ NOT NULL);
"""
T = TypeVar("T")
AskedSoFar = dict[tuple[str, str, str], frozenset[str]]


class ExtractionLedger:
    def __init__(self, state: StateStore) -> None:
        self._state = state
        state.ensure_schema(SCHEMA)

    def decide_and_record(
        self,
        bank_id: str,
        subjects: Sequence[str],
        decide: Callable[[AskedSoFar], tuple[T, Sequence[Asked]]],
        now: datetime,
    ) -> T:
        """Load what `bank_id` asked of `subjects`, let `decide` judge, store the new values.

        All under the store's lock in one transaction: two concurrent requests cannot both
        take the last allowance.
        """
        with self._state.transaction() as con:
            rows = con.execute(
                "SELECT subject, field, scope, list(value_key) FROM verify_asked "
                "WHERE bank_id = ? AND subject IN (SELECT unnest(?::VARCHAR[])) "
                "GROUP BY subject, field, scope",
                [bank_id, list(subjects)],
            ).fetchall()
            result, new = decide({(s, f, sc): frozenset(v) for s, f, sc, v in rows})
            if new:
                con.execute(
                    "INSERT INTO verify_asked SELECT ?, unnest(?::VARCHAR[]), "
                    "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), ?",
                    [bank_id, [a.subject for a in new], [a.field for a in new],
                     [a.scope for a in new], [a.value_key for a in new], now],
                )
        return result
