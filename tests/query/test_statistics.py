"""Statistical checks of the released noise: error matches the reported scale, the 95% interval
covers ~95%, and a two-neighbour audit finds no output more than e^ε likelier under either."""

from __future__ import annotations

import math

import numpy as np
import pytest

from policies.budget import Epsilon
from saferoom import dp
from saferoom.dataset_spec import DatasetCreate
from saferoom.query.exact import ExactCells
from saferoom.query.parse import parse_query
from saferoom.query.release import calibrate, exact_plan, release

SCHEMA = DatasetCreate.model_validate({
    "name": "tax", "key": "uscc",
    "columns": [
        {"name": "uscc", "type": "string", "role": "key"},
        {"name": "region", "type": "string", "role": "dimension",
         "values": [f"r{i}" for i in range(200)]},
        {"name": "amount", "type": "int", "role": "measure", "bounds": [0, 1000]},
    ],
})
REGIONS = [f"r{i}" for i in range(200)]


def _cells(counts: list[int], sums: list[int] | None = None) -> ExactCells:
    values = {"n": np.array(counts, dtype=np.int64)}
    if sums is not None:
        values["sum:tax.amount"] = np.array(sums, dtype=np.int64)
    top2 = {"sum:tax.amount": np.zeros(len(counts), dtype=np.int64)} if sums else {}
    return ExactCells(groups=[(r,) for r in REGIONS], values=values, top2=top2,
                      abs_sum={k: np.full(len(counts), 10**9, dtype=np.int64) for k in top2})


def _discrete_laplace_sd(b: float) -> float:
    a = math.exp(-1 / b)
    return math.sqrt(2 * a) / (1 - a)


@pytest.mark.slow
@pytest.mark.parametrize("epsilon", [0.1, 1.0])
def test_error_matches_the_reported_scale_and_interval(epsilon: float) -> None:
    plan = parse_query("SELECT region, COUNT(*) AS n, SUM(amount) AS s FROM tax GROUP BY region",
                       {"tax": SCHEMA})
    exact = exact_plan(plan, {"tax": SCHEMA})
    cal = calibrate(exact, Epsilon.parse(epsilon), "discrete_laplace")
    counts, sums = [1000] * 200, [500_000] * 200
    errors_n, errors_s = [], []
    for _ in range(50):  # 50 queries x 200 cells = 10,000 draws per aggregate
        out = release(exact, _cells(counts, sums), cal, min_group_size=1)
        errors_n += [r[1] - 1000 for r in out.rows]
        errors_s += [r[2] - 500_000 for r in out.rows]
    for errors, alias in ((np.array(errors_n), "n"), (np.array(errors_s), "s")):
        scale = out.privacy["noise_scale"][alias]
        ci = out.privacy["ci95"][alias]
        assert abs(errors.mean()) < 5 * _discrete_laplace_sd(scale) / math.sqrt(len(errors))
        assert errors.std() == pytest.approx(_discrete_laplace_sd(scale), rel=0.06)
        coverage = float(np.mean(np.abs(errors) <= ci))
        assert 0.94 <= coverage <= 0.975, coverage


@pytest.mark.slow
def test_neighbouring_datasets_are_indistinguishable_up_to_e_epsilon() -> None:
    """D has 100 enterprises in a cell, D' one more: every output's odds stay within e^ε."""
    epsilon = 0.5
    spec = dp.laplace_for(1, epsilon)
    draws = 200_000
    d = np.array(dp.add_noise(spec, [100] * draws))
    d_prime = np.array(dp.add_noise(spec, [101] * draws))
    low, high = 90, 112
    hist_d = np.array([(d == v).sum() for v in range(low, high)])
    hist_p = np.array([(d_prime == v).sum() for v in range(low, high)])
    enough = (hist_d > 2000) & (hist_p > 2000)
    ratios = np.maximum(hist_d[enough] / hist_p[enough], hist_p[enough] / hist_d[enough])
    assert enough.sum() >= 8
    # Sampling error on bins of > 2,000 draws is a few percent; a broken mechanism is far off.
    assert ratios.max() <= math.exp(epsilon) * 1.1
    # ...and the bound is tight: outputs away from both centres differ by exactly e^ε.
    assert ratios.max() >= math.exp(epsilon) * 0.9
