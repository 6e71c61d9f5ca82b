"""Aggregate queries end to end: parse, decide, calibrate, debit, compute, release, audit.

The order is the privacy argument: nothing is read before the budget is debited durably, and
nothing leaves before the decision and its spend are in the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.budget import BudgetState, Epsilon
from policies.decisions import decide_aggregate
from policies.facts import Actor
from policies.names import Purpose
from saferoom import dp
from saferoom.auth import Principal
from saferoom.budget_store import BudgetedDataset, BudgetLedger
from saferoom.dataset_policy import policy_of
from saferoom.dataset_spec import DatasetCreate
from saferoom.datasets import can_see
from saferoom.errors import InvalidFields
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.query.exact import Engine, ExactPlan, SourceVersion
from saferoom.query.parse import parse_query
from saferoom.query.plan import ColumnRef, QueryPlan
from saferoom.query.release import Calibration, calibrate, exact_plan, privacy_block, release
from saferoom.recorder import Call, digest
from saferoom.room import Room
from saferoom.state import DatasetRecord, utcnow

DEFAULT_MIN_GROUP_SIZE = 10


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=20_000)
    epsilon: float = Field(gt=0, le=10, allow_inf_nan=False)
    purpose: Purpose
    mechanism: Literal["discrete_laplace", "discrete_gaussian"] = "discrete_laplace"
    # Tighter clipping of SUM/AVG columns inside the declared bounds: {"dataset.column": [lo, hi]}
    bounds: dict[str, tuple[float, float]] = Field(default_factory=dict, max_length=50)

    @field_validator("epsilon")
    @classmethod
    def _exact(cls, value: float) -> float:
        Epsilon.parse(value)  # at most 6 decimals: the ledger is exact
        return value


@dataclass(frozen=True)
class CheckedQuery:
    plan: QueryPlan
    exact: ExactPlan
    calibration: Calibration
    records: dict[str, DatasetRecord]
    budgeted: list[BudgetedDataset]
    min_group_size: int


def _budget_view(states: Sequence[BudgetState]) -> dict[str, dict[str, Any]]:
    return {
        s.dataset: {
            "total": float(s.limits.per_bank),
            "spent": float(s.spent_by_bank),
            "remaining": float(s.remaining),
            "period": s.limits.period,
            "period_end": s.period.end.isoformat(),
        }
        for s in states
    }


def _narrowed(
    bounds: dict[str, tuple[float, float]],
    plan: QueryPlan,
    schemas: dict[str, DatasetCreate],
) -> dict[ColumnRef, tuple[float, float]]:
    """Check the bank's clipping bounds: a measure the query sums, inside its declared bounds."""
    out: dict[ColumnRef, tuple[float, float]] = {}
    summed = {a.column for a in plan.aggregates if a.function in ("sum", "avg") and a.column}
    for name, (lo, hi) in bounds.items():
        dataset, _, column = name.rpartition(".")
        ref = ColumnRef(dataset, column)
        spec = schemas[dataset].column(column) if dataset in plan.datasets else None
        if ref not in summed or spec is None or spec.bounds is None:
            raise InvalidFields.at(["body", "bounds", name],
                                   "name a measure column the query sums, as dataset.column")
        if not (spec.bounds[0] <= lo < hi <= spec.bounds[1]):
            raise InvalidFields.at(["body", "bounds", name],
                                   "bounds must satisfy declared lo <= lo < hi <= declared hi")
        out[ref] = (lo, hi)
    return out


def engine_for(room: Room) -> DuckDBEngine:
    """The process's engine over the room's sealed datasets (one per process: it caches)."""

    def load(dataset_id: str) -> tuple[int, pa.Table]:
        record, table = room.datasets.read_current(dataset_id)
        return record.version, table

    return DuckDBEngine(load)


class QueryService:
    def __init__(self, room: Room, engine: Engine | None = None) -> None:
        dp.enable()
        self._room = room
        self._engine = engine or engine_for(room)
        self.ledger = BudgetLedger(room.state)

    def close(self) -> None:
        if isinstance(self._engine, DuckDBEngine):
            self._engine.close()

    def check(self, principal: Principal, request: QueryRequest, now: datetime) -> CheckedQuery:
        """Everything short of spending: parse, policy decision, calibration. Raises denials."""
        visible = {d.name: d for d in self._room.state.datasets() if can_see(principal, d)}
        schemas = {name: DatasetCreate.model_validate(d.spec) for name, d in visible.items()}
        plan = parse_query(request.sql, schemas)
        records = {name: visible[name] for name in plan.datasets}
        policies = {name: policy_of(d) for name, d in records.items()}
        decide_aggregate(
            Actor(principal.id, principal.role),
            policies,
            self._room.agreements.for_bank(principal.id),
            request.purpose,
            set(plan.functions),
            now,
            own_datasets=frozenset(n for n, d in records.items() if d.owner_id == principal.id),
        ).raise_if_denied()
        sections = {name: p.aggregate for name, p in policies.items() if p and p.aggregate}
        exact = exact_plan(plan, {n: schemas[n] for n in plan.datasets},
                           _narrowed(request.bounds, plan, schemas))
        calibration = calibrate(exact, Epsilon.parse(request.epsilon), request.mechanism)
        return CheckedQuery(
            plan=plan,
            exact=exact,
            calibration=calibration,
            records=records,
            budgeted=[BudgetedDataset(records[n].id, n, s) for n, s in sections.items()],
            # Several departments' data: every policy applies, so the strictest setting wins.
            min_group_size=max(
                [s.min_group_size for s in sections.values()] or [DEFAULT_MIN_GROUP_SIZE]
            ),
        )

    def preview(self, principal: Principal, request: QueryRequest, call: Call) -> dict[str, Any]:
        now = utcnow()
        checked = self.check(principal, request, now)
        body = {
            "privacy": privacy_block(checked.exact, checked.calibration),
            "budget": _budget_view(self.ledger.states(principal.id, checked.budgeted, now)),
        }
        call.record(resource=",".join(checked.plan.datasets), purpose=request.purpose,
                    released=body)
        return body

    def run(self, principal: Principal, request: QueryRequest, call: Call) -> dict[str, Any]:
        now = utcnow()
        checked = self.check(principal, request, now)
        states = self.ledger.spend(principal.id, checked.budgeted, checked.calibration.epsilon,
                                   now, digest(request.model_dump()))
        sources = {
            n: SourceVersion(d.id, n, d.version) for n, d in checked.records.items()
        }
        try:
            cells = self._engine.compute(checked.exact, sources)
            result = release(checked.exact, cells, checked.calibration, checked.min_group_size)
        except Exception:
            # The spend stands (data may have been read); the log must still show it.
            call.record(resource=",".join(checked.plan.datasets), purpose=request.purpose,
                        decision="deny", reason="internal_error",
                        epsilon=float(checked.calibration.epsilon))
            raise
        body = {
            "columns": result.columns,
            "rows": result.rows,
            "privacy": result.privacy,
            "suppressed_groups": result.suppressed_groups,
            "budget": _budget_view(states),
        }
        call.record(resource=",".join(checked.plan.datasets), purpose=request.purpose,
                    epsilon=float(checked.calibration.epsilon), released=body)
        return body

    def budgets(self, principal: Principal) -> dict[str, Any]:
        """The caller's budgets on every dataset it could query now."""
        now = utcnow()
        agreements = self._room.agreements.for_bank(principal.id)
        budgeted = []
        for d in self._room.state.datasets():
            policy = policy_of(d) if can_see(principal, d) else None
            if policy is None:
                continue
            section = policy.aggregate
            usable = d.owner_id == principal.id or any(
                a.is_live(now) and d.name in a.datasets for a in agreements
            )
            if section is not None and usable:
                budgeted.append(BudgetedDataset(d.id, d.name, section))
        return {"budgets": _budget_view(self.ledger.states(principal.id, budgeted, now))}
