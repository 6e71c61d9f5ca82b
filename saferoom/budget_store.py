"""The privacy budget ledger: exact spends in micro-ε, debited atomically and durably.

A spend is committed before any data is read and is never refunded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policies.budget import BudgetLimits, BudgetState, Epsilon, decide_spend, period_of
from policies.documents import AggregatePolicy
from saferoom.state import StateStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_spends (
    bank_id VARCHAR NOT NULL, dataset_id VARCHAR NOT NULL, period_start TIMESTAMPTZ NOT NULL,
    micro BIGINT NOT NULL, spent_at TIMESTAMPTZ NOT NULL, query_digest VARCHAR NOT NULL);
"""


Run = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class BudgetedDataset:
    """A dataset a query reads, with the aggregate policy that sets its budget."""

    id: str
    name: str
    policy: AggregatePolicy


class BudgetLedger:
    def __init__(self, state: StateStore) -> None:
        self._state = state
        state.ensure_schema(SCHEMA)

    @staticmethod
    def _read(run: Run, bank_id: str, dataset: BudgetedDataset, now: datetime) -> BudgetState:
        limits = BudgetLimits.of(dataset.policy)
        period = period_of(limits.period, now)
        rows = run(
            "SELECT coalesce(sum(micro) FILTER (WHERE bank_id = ?), 0), coalesce(sum(micro), 0) "
            "FROM budget_spends WHERE dataset_id = ? AND period_start = ?",
            [bank_id, dataset.id, period.start],
        )
        by_bank, by_all = rows[0]
        return BudgetState(
            dataset.name, limits, period, Epsilon(int(by_bank)), Epsilon(int(by_all))
        )

    def states(
        self, bank_id: str, datasets: Sequence[BudgetedDataset], now: datetime
    ) -> list[BudgetState]:
        return [self._read(self._state.query, bank_id, d, now) for d in datasets]

    def spend(
        self,
        bank_id: str,
        datasets: Sequence[BudgetedDataset],
        epsilon: Epsilon,
        now: datetime,
        digest: str,
    ) -> list[BudgetState]:
        """Debit `epsilon` on every dataset, or on none; raise `budget_exhausted` if any lacks it.

        Reading the balances and inserting the spends happen in one transaction under the
        store's lock, so concurrent queries can never overdraw; the commit is durable.
        """
        with self._state.transaction(keeps_datasets=True) as con:

            def run(sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
                return con.execute(sql, list(params)).fetchall()

            states = [self._read(run, bank_id, d, now) for d in datasets]
            decide_spend(states, epsilon).raise_if_denied()
            con.executemany(
                "INSERT INTO budget_spends VALUES (?, ?, ?, ?, ?, ?)",
                [[bank_id, d.id, s.period.start, epsilon.micro, now, digest]
                 for d, s in zip(datasets, states, strict=True)],
            )
        return [s.after(epsilon) for s in states]
