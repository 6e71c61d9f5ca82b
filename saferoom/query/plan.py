"""The typed query plan that bank SQL is parsed into; the only thing the engine ever runs.

Every name in it was resolved against a registered schema and every value is a typed literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

AggregateFunction = Literal["count", "sum", "avg"]
CompareOp = Literal["=", "!=", "<", "<=", ">", ">="]
Value = str | int | float | bool | date


@dataclass(frozen=True)
class ColumnRef:
    dataset: str
    column: str


@dataclass(frozen=True)
class GroupOutput:
    column: ColumnRef
    alias: str


@dataclass(frozen=True)
class AggregateOutput:
    function: AggregateFunction
    column: ColumnRef | None  # None: COUNT(*)
    alias: str


Output = GroupOutput | AggregateOutput


@dataclass(frozen=True)
class Compare:
    column: ColumnRef
    op: CompareOp
    value: Value


@dataclass(frozen=True)
class InList:
    column: ColumnRef
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between:
    column: ColumnRef
    low: Value
    high: Value
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    column: ColumnRef
    negated: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    part: Condition


Condition = Compare | InList | Between | IsNull | BoolOp | Negation


@dataclass(frozen=True)
class QueryPlan:
    """SELECT outputs FROM datasets[0] JOIN datasets[1..] ON key WHERE … GROUP BY group_by."""

    datasets: tuple[str, ...]
    outputs: tuple[Output, ...]
    group_by: tuple[ColumnRef, ...]
    where: Condition | None

    @property
    def aggregates(self) -> tuple[AggregateOutput, ...]:
        return tuple(o for o in self.outputs if isinstance(o, AggregateOutput))

    @property
    def functions(self) -> frozenset[str]:
        return frozenset(a.function for a in self.aggregates)
