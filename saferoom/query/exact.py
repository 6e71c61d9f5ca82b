"""What the engine must compute exactly for a checked plan: bounded, clipped, integer cells.

The `Engine` seam: any engine (DuckDB here, Spark later) computes an `ExactPlan` to `ExactCells`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from saferoom.dataset_spec import ColumnSpec, DatasetCreate
from saferoom.query.plan import ColumnRef, QueryPlan

QuantityKind = Literal["rows", "subjects", "nonnull", "sum"]
# Money and other float measures are summed as fixed-point integers with two decimals.
FLOAT_SCALE = 100


@dataclass(frozen=True)
class Clip:
    """How a summable column becomes bounded integers: clip to [lo, hi], then × scale."""

    lo: float
    hi: float
    scale: int

    @classmethod
    def of(cls, spec: ColumnSpec) -> Clip:
        if spec.role == "flag":
            return cls(0, 1, 1)
        assert spec.bounds is not None
        return cls(spec.bounds[0], spec.bounds[1], 1 if spec.type == "int" else FLOAT_SCALE)

    @property
    def max_abs(self) -> int:
        return math.ceil(max(abs(self.lo), abs(self.hi)) * self.scale)


@dataclass(frozen=True)
class Quantity:
    """One integer cell per group; `column` is None for row and subject counts."""

    name: str
    kind: QuantityKind
    column: ColumnRef | None = None
    clip: Clip | None = None
    dominance: bool = False  # also compute the two largest contributions and the absolute sum


@dataclass(frozen=True)
class ExactPlan:
    plan: QueryPlan
    schemas: Mapping[str, DatasetCreate]
    quantities: tuple[Quantity, ...]
    # Declared rows per subject per dataset: the engine keeps at most this many per key.
    row_bounds: Mapping[str, int]


@dataclass
class ExactCells:
    """Exact per-group results; never leaves the room without noise."""

    groups: list[tuple[object, ...]]
    values: dict[str, npt.NDArray[np.int64]]
    top2: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    abs_sum: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceVersion:
    """Which sealed version of a dataset to read (the engine caches by id and version)."""

    dataset_id: str
    name: str
    version: int


class Engine(Protocol):
    def compute(self, exact: ExactPlan, sources: Mapping[str, SourceVersion]) -> ExactCells: ...
