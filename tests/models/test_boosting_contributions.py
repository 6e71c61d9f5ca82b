"""Boosting reason codes: predicting only the copies whose feature differs from its reference gives
the very bits the full k+1 stacked copies gave."""

from __future__ import annotations

import numpy as np
import pytest

from models import boosting
from models.boosting import Boosting, fit_boosting
from models.features import Feature, FeatureEncoder
from models.params import template_params

ENCODER = FeatureEncoder((
    Feature("amount", "float"),
    Feature("count", "int"),
    Feature("flag", "bool"),
    Feature("kind", "string", ("a", "b", "c")),  # codes 0-2, 3 is OTHER
    Feature("rare", "int"),  # mostly missing: its reference is NaN
))


def stacked_contributions(model: Boosting, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The algorithm before: every row predicted k+1 times, copy j+1 with feature j replaced."""
    rows, k = matrix.shape
    probability = np.empty(rows)
    contribution = np.empty((rows, k))
    step = max(1, boosting.MAX_STACKED_ROWS // (k + 1))
    features = np.arange(k)
    for start in range(0, rows, step):
        chunk = matrix[start : start + step]
        stacked = np.repeat(chunk[np.newaxis], k + 1, axis=0)
        stacked[features + 1, :, features] = model.reference[:, np.newaxis]
        p = model.probability(stacked.reshape(-1, k)).reshape(k + 1, len(chunk))
        probability[start : start + step] = p[0]
        contribution[start : start + step] = (p[0] - p[1:]).T
    return probability, contribution


def features(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Lognormal amounts, counts mostly 0, flags, categories; some of each missing."""
    matrix = np.column_stack([
        rng.lognormal(10, 1.5, rows),
        rng.poisson(0.3, rows).astype(np.float64),
        (rng.random(rows) < 0.1).astype(np.float64),
        rng.choice(4, rows, p=[0.6, 0.2, 0.15, 0.05]).astype(np.float64),
        rng.poisson(2, rows).astype(np.float64),
    ])
    matrix[rng.random(matrix.shape) < 0.1] = np.nan
    matrix[rng.random(rows) < 0.8, 4] = np.nan
    return matrix


@pytest.fixture(scope="module")
def model() -> Boosting:
    rng = np.random.default_rng(3)
    matrix = features(rng, 4000)
    risk = (
        0.5 * np.nan_to_num(matrix[:, 1])
        + np.nan_to_num(matrix[:, 2])
        - 0.3 * np.log(np.nan_to_num(matrix[:, 0], nan=1e4))
        + 0.4 * (matrix[:, 3] == 2)
        + 0.3 * np.isnan(matrix[:, 4])
    )
    label = (rng.random(4000) < 1 / (1 + np.exp(-(risk + 2)))).astype(np.int8)
    params = template_params("gradient_boosting", {"max_iter": 40, "early_stopping": False})
    fitted = fit_boosting(ENCODER, matrix, label, params, seed=0)
    assert np.isnan(fitted.reference[4]) and fitted.reference[1] == 0
    return fitted


def scoring_batch() -> np.ndarray:
    matrix = features(np.random.default_rng(11), 2500)
    matrix[::7, 1] = -0.0  # equal to the reference 0: skipped, and still exactly 0
    return matrix


def assert_same_bits(new: np.ndarray, old: np.ndarray) -> None:
    assert new.shape == old.shape and new.dtype == old.dtype == np.float64
    np.testing.assert_array_equal(new.view(np.uint64), old.view(np.uint64))


@pytest.mark.parametrize("max_rows", [boosting.MAX_STACKED_ROWS, 600, 1])
def test_contributions_are_bit_identical_to_all_stacked_copies(model, monkeypatch, max_rows):
    monkeypatch.setattr(boosting, "MAX_STACKED_ROWS", max_rows)  # one chunk, several, one row each
    matrix = scoring_batch() if max_rows > 1 else scoring_batch()[:300]
    probability, contribution = model.contributions(matrix)
    old_probability, old_contribution = stacked_contributions(model, matrix)
    assert_same_bits(probability, old_probability)
    assert_same_bits(contribution, old_contribution)
    assert np.count_nonzero(contribution) > 0  # the copies that were predicted


def test_values_at_the_reference_contribute_nothing(model):
    matrix = scoring_batch()
    _, contribution = model.contributions(matrix)
    at_reference = (matrix == model.reference) | (np.isnan(matrix) & np.isnan(model.reference))
    assert at_reference.mean() > 0.3  # the case this speeds up
    assert not np.signbit(contribution[at_reference]).any()
    assert (contribution[at_reference] == 0).all()


def test_small_batches(model):
    for matrix in (scoring_batch()[:0], scoring_batch()[:1], model.reference[np.newaxis]):
        probability, contribution = model.contributions(matrix)
        old_probability, old_contribution = stacked_contributions(model, matrix)
        assert_same_bits(probability, old_probability)
        assert_same_bits(contribution, old_contribution)
    assert (model.contributions(model.reference[np.newaxis])[1] == 0).all()
