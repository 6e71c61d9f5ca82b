"""From exact cells to what may leave: OpenDP noise, the public group domain, suppression.

Suppression of small and dominated cells is hygiene on top of differential privacy, never instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from policies.budget import Epsilon
from policies.errors import PolicyDenied
from saferoom import dp
from saferoom.dataset_spec import DatasetCreate
from saferoom.query.exact import Clip, ExactCells, ExactPlan, Quantity
from saferoom.query.plan import AggregateOutput, ColumnRef, GroupOutput, QueryPlan

MAX_GROUPS = 100_000
DOMINANCE_SHARE = 0.9
# δ for queries whose groups are not a public domain and so are selected by a noisy threshold.
SELECTION_DELTA = 1e-6
GAUSSIAN_DELTA = 1e-6


@dataclass(frozen=True)
class Calibration:
    """The noise of every quantity of a query, and what the query costs."""

    epsilon: Epsilon
    mechanism: dp.Mechanism
    noise: Mapping[str, dp.NoiseSpec]
    delta: float


@dataclass(frozen=True)
class QueryRelease:
    columns: list[str]
    rows: list[list[Any]]
    suppressed_groups: int
    privacy: dict[str, Any]


def exact_plan(
    plan: QueryPlan,
    schemas: Mapping[str, DatasetCreate],
    narrowed: Mapping[ColumnRef, tuple[float, float]] | None = None,
) -> ExactPlan:
    """What to compute exactly: a subject count for thresholds, then counts and clipped sums.

    `narrowed` are clipping bounds the bank chose inside the declared ones: less noise for
    typical values, at the cost of clipping large ones (data-independent, so free of privacy).
    """
    bounds = {d: schemas[d].max_rows_per_subject for d in plan.datasets}
    per_subject = math.prod(bounds.values())
    quantities: dict[str, Quantity] = {
        "n": Quantity("n", "rows" if per_subject == 1 else "subjects")
    }
    for agg in plan.aggregates:
        if agg.column is None:
            if per_subject > 1:
                quantities.setdefault("rows", Quantity("rows", "rows"))
            continue
        ref = agg.column
        if agg.function in ("count", "avg"):
            name = f"nonnull:{ref.dataset}.{ref.column}"
            quantities.setdefault(name, Quantity(name, "nonnull", ref))
        if agg.function in ("sum", "avg"):
            spec = schemas[ref.dataset].column(ref.column)
            assert spec is not None
            name = f"sum:{ref.dataset}.{ref.column}"
            clip = Clip.of(spec)
            if narrowed and ref in narrowed:
                clip = Clip(*narrowed[ref], clip.scale)
            quantities.setdefault(name, Quantity(name, "sum", ref, clip, dominance=True))
    return ExactPlan(plan, schemas, tuple(quantities.values()), bounds)


def _sensitivity(q: Quantity, per_subject: int) -> int:
    if q.kind == "subjects":
        return 1
    if q.kind == "sum":
        assert q.clip is not None
        return per_subject * max(q.clip.max_abs, 1)
    return per_subject


# Weights of the ε split: a subject count used only to suppress small cells needs far less
# accuracy than what is released (suppressing at 10 ± a few is fine), so it gets a tenth.
RELEASED_WEIGHT = 10
HIDDEN_COUNT_WEIGHT = 1


def _weights(exact: ExactPlan) -> list[int]:
    released_n = any(a.column is None for a in exact.plan.aggregates) and not any(
        q.name == "rows" for q in exact.quantities)
    selects_groups = not _public_domain(exact)  # the count also picks which groups appear
    return [
        RELEASED_WEIGHT if q.name != "n" or released_n or selects_groups else HIDDEN_COUNT_WEIGHT
        for q in exact.quantities
    ]


def calibrate(exact: ExactPlan, epsilon: Epsilon, mechanism: dp.Mechanism) -> Calibration:
    """Split ε over the quantities (exactly, rounding down) and derive each one's noise."""
    per_subject = math.prod(exact.row_bounds.values())
    weights = _weights(exact)
    shares = [Epsilon(epsilon.micro * w // sum(weights)) for w in weights]
    if min(s.micro for s in shares) == 0:
        raise PolicyDenied("query_not_allowed", "epsilon is too small for this many aggregates")
    noise: dict[str, dp.NoiseSpec] = {}
    delta = 0.0
    for q, share in zip(exact.quantities, shares, strict=True):
        sens = _sensitivity(q, per_subject)
        if mechanism == "discrete_laplace":
            spec = dp.laplace_for(sens, float(share))
            bound = float(share)
        else:
            # Spend ε as (ε, δ)-DP via zCDP: ρ with ρ + 2·sqrt(ρ·ln(1/δ)) = ε, split over parts.
            log_term = math.log(1 / GAUSSIAN_DELTA)
            rho = (math.sqrt(log_term + float(epsilon)) - math.sqrt(log_term)) ** 2
            bound = rho * share.micro / epsilon.micro
            spec = dp.gaussian_for(sens, bound)
            delta = GAUSSIAN_DELTA
        # OpenDP certifies the loss of each measurement; it must not exceed the share.
        if dp.privacy_loss(spec) > bound * (1 + 1e-9):
            raise RuntimeError("calibration exceeds the privacy share")
        noise[q.name] = spec
    if not _public_domain(exact):
        delta += SELECTION_DELTA
    return Calibration(epsilon, mechanism, noise, delta)


def _public_domain(exact: ExactPlan) -> bool:
    return all(
        exact.schemas[g.dataset].column(g.column).values is not None  # type: ignore[union-attr]
        for g in exact.plan.group_by
    )


def _domain(exact: ExactPlan) -> list[tuple[object, ...]]:
    domains = []
    for g in exact.plan.group_by:
        schema = exact.schemas[g.dataset]
        column = schema.column(g.column)
        assert column is not None
        values = schema.domain(column)
        assert values is not None
        domains.append(values.to_pylist())
    if math.prod(len(d) for d in domains) > MAX_GROUPS:
        raise PolicyDenied("query_not_allowed", f"more than {MAX_GROUPS} groups")
    return list(itertools.product(*domains))


def _align(cells: ExactCells, groups: Sequence[tuple[object, ...]]) -> ExactCells:
    """Spread exact cells over `groups`, zeros where no row fell (empty groups are released)."""
    index = {g: i for i, g in enumerate(cells.groups)}
    where = np.array([index.get(g, -1) for g in groups], dtype=np.int64)
    present = where >= 0

    def spread(a: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        out = np.zeros(len(groups), dtype=np.int64)
        out[present] = a[where[present]]
        return out

    return ExactCells(
        groups=list(groups),
        values={k: spread(v) for k, v in cells.values.items()},
        top2={k: spread(v) for k, v in cells.top2.items()},
        abs_sum={k: spread(v) for k, v in cells.abs_sum.items()},
    )


def release(
    exact: ExactPlan, cells: ExactCells, calibration: Calibration, min_group_size: int
) -> QueryRelease:
    """Noise every quantity, then suppress small and dominated cells, then shape the rows."""
    public = _public_domain(exact)
    if public:
        cells = _align(cells, _domain(exact))
    noisy = {
        name: np.array(dp.add_noise(calibration.noise[name], cells.values[name].tolist()),
                       dtype=np.int64)
        for name in cells.values
    }
    n = noisy["n"]
    keep = np.ones(len(cells.groups), dtype=bool)
    if not public:
        spec = calibration.noise["n"]
        threshold = spec.sensitivity + math.ceil(spec.scale * math.log(1 / SELECTION_DELTA))
        keep = n >= max(threshold, min_group_size)
    small = n < min_group_size
    dominated = {
        name: (cells.abs_sum[name] > 0)
        & (cells.top2[name] > DOMINANCE_SHARE * cells.abs_sum[name])
        for name in cells.top2
    }
    plan = exact.plan
    kept = np.flatnonzero(keep)
    small_kept = small[kept]
    hit = small_kept.copy()
    # Column by column over the kept groups: a row-by-row loop cost 0.5 s at 100,000 groups.
    columns: list[list[Any]] = []
    for out in plan.outputs:
        if isinstance(out, GroupOutput):
            k = plan.group_by.index(out.column)
            columns.append([cells.groups[i][k] for i in kept])
            continue
        values, dominated_here = _column(out, exact, noisy, dominated, kept)
        hit |= dominated_here
        columns.append([None if s else v for v, s in
                        zip(values, (small_kept | dominated_here).tolist(), strict=True)])
    return QueryRelease(
        columns=[o.alias for o in plan.outputs],
        rows=[list(row) for row in zip(*columns, strict=True)],
        suppressed_groups=int(hit.sum()),
        privacy=privacy_block(exact, calibration),
    )


def _column(
    out: AggregateOutput,
    exact: ExactPlan,
    noisy: Mapping[str, npt.NDArray[np.int64]],
    dominated: Mapping[str, npt.NDArray[np.bool_]],
    kept: npt.NDArray[np.intp],
) -> tuple[list[float | int | None], npt.NDArray[np.bool_]]:
    """One aggregate's released values for the kept groups, and where dominance hides them."""
    clean = np.zeros(len(kept), dtype=bool)
    if out.column is None:
        name = "rows" if "rows" in noisy else "n"
        return np.maximum(noisy[name][kept], 0).tolist(), clean
    ref = f"{out.column.dataset}.{out.column.column}"
    if out.function == "count":
        return np.maximum(noisy[f"nonnull:{ref}"][kept], 0).tolist(), clean
    q = next(q for q in exact.quantities if q.name == f"sum:{ref}")
    assert q.clip is not None
    sums = noisy[q.name][kept]
    hit = dominated[q.name][kept]
    if out.function == "sum":
        if q.clip.scale == 1:
            return sums.tolist(), hit
        return [round(t, 2) for t in (sums / q.clip.scale).tolist()], hit
    counts = noisy[f"nonnull:{ref}"][kept]
    means = (sums / q.clip.scale) / np.maximum(counts, 1)
    # Clamping to the declared bounds is post-processing: free, and never less accurate.
    clamped = np.clip(means, q.clip.lo, q.clip.hi).tolist()
    return [None if c < 1 else round(m, 4) for m, c in zip(clamped, counts.tolist(),
                                                           strict=True)], hit


def privacy_block(exact: ExactPlan, calibration: Calibration) -> dict[str, Any]:
    """Per aggregate: its noise scale and 95% interval in output units; what the query spends."""
    scales: dict[str, float] = {}
    intervals: dict[str, float | None] = {}
    details = []
    for out in exact.plan.aggregates:
        if out.column is None:
            name = "rows" if "rows" in calibration.noise else "n"
            divisor = 1
        else:
            ref = f"{out.column.dataset}.{out.column.column}"
            name = f"nonnull:{ref}" if out.function == "count" else f"sum:{ref}"
            clip = next((q.clip for q in exact.quantities if q.name == name), None)
            divisor = clip.scale if clip is not None else 1
        spec = calibration.noise[name]
        scales[out.alias] = spec.scale / divisor
        # An average's interval depends on its cell's count: see the sum and count intervals.
        intervals[out.alias] = None if out.function == "avg" else dp.ci95_halfwidth(spec) / divisor
        details.append({"column": out.alias, "function": out.function,
                        "noise_scale": scales[out.alias], "ci95": intervals[out.alias]})
    return {
        "epsilon_spent": float(calibration.epsilon),
        "delta": calibration.delta,
        "mechanism": calibration.mechanism,
        "noise_scale": scales,
        "ci95": intervals,
        "aggregates": details,
        "epsilon_split": {q.name: float(calibration.noise[q.name].sensitivity
                                         / calibration.noise[q.name].scale)
                          for q in exact.quantities}
        if calibration.mechanism == "discrete_laplace" else len(exact.quantities),
    }
