"""Which distinct values each bank has tested on each subject's field: the extraction ledger.

It survives restarts (DuckDB), and reads and writes happen in one locked transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TypeVar

import pyarrow as pa

from policies.verification import Asked
from saferoom.state import POINT_LOOKUPS, StateStore, registered

SCHEMA = """
CREATE TABLE IF NOT EXISTS verify_asked (
    bank_id VARCHAR NOT NULL, subject VARCHAR NOT NULL, field VARCHAR NOT NULL,
    scope VARCHAR NOT NULL, value_key VARCHAR NOT NULL, asked_at TIMESTAMPTZ NOT NULL);
CREATE INDEX IF NOT EXISTS verify_asked_by_subject ON verify_asked (subject);
"""
T = TypeVar("T")
AskedSoFar = Mapping[tuple[str, str, str], AbstractSet[str]]


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
        with self._state.transaction(keeps_datasets=True) as con:
            select = "SELECT v.subject, v.field, v.scope, v.value_key FROM verify_asked v "
            if len(subjects) <= POINT_LOOKUPS:
                # The index, rather than a join that scans the ledger; the subject must be the
                # only condition for DuckDB to use it, so the bank is filtered here.
                marks = ", ".join("?" for _ in subjects)
                sql = ("SELECT v.bank_id, v.subject, v.field, v.scope, v.value_key FROM "  # noqa: S608
                       f"verify_asked v WHERE v.subject IN ({marks})")
                rows = [r[1:] for r in con.execute(sql, list(subjects)).fetchall()
                        if r[0] == bank_id]
            else:
                asking = pa.table({"subject": pa.array(subjects, pa.string())})
                with registered(con, "asking", asking):
                    rows = con.execute(select + "SEMI JOIN asking a ON a.subject = v.subject "
                                       "WHERE v.bank_id = ?", [bank_id]).fetchall()
            asked: dict[tuple[str, str, str], set[str]] = {}
            for subject, field, scope, value in rows:
                asked.setdefault((subject, field, scope), set()).add(value)
            result, new = decide(asked)
            if new:
                new_asks = pa.table({
                    "subject": [a.subject for a in new], "field": [a.field for a in new],
                    "scope": [a.scope for a in new], "value_key": [a.value_key for a in new]})
                with registered(con, "new_asks", new_asks):
                    con.execute("INSERT INTO verify_asked SELECT ?, subject, field, scope, "
                                "value_key, ? FROM new_asks", [bank_id, now])
        return result
