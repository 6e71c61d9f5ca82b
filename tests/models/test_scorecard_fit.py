"""The scorecard's regression on distinct (bins, label) rows weighted by their counts: the same
coefficients as on every training row, the same points, the same ranking of held-out rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models import scorecard
from models.features import FeatureEncoder
from models.params import template_params
from models.training import LABEL, read_label
from tests.models.conftest import FEATURE_TYPES


def every_row(index, counts, label):
    """The fit before: each training row once, unweighted."""
    return np.arange(len(label)), None


@pytest.mark.parametrize("params", [{}, {"C": 0.01, "bins": 10}, {"C": 100.0, "bins": 3}])
def test_grouped_fit_matches_the_fit_on_every_row(split, monkeypatch, params):
    label = read_label(split.train)
    features = split.train.drop_columns([LABEL])
    encoder = FeatureEncoder.fit(features, FEATURE_TYPES)
    matrix = encoder.matrix(features)
    args = (encoder, matrix, label, template_params("logistic_scorecard", params), 0)
    grouped = scorecard.fit_scorecard(*args)
    monkeypatch.setattr(scorecard, "distinct_rows", every_row)
    ungrouped = scorecard.fit_scorecard(*args)

    np.testing.assert_allclose(grouped.coef, ungrouped.coef, rtol=1e-6, atol=0)
    assert grouped.intercept == pytest.approx(ungrouped.intercept, rel=1e-6, abs=0)
    for a, b in zip(grouped.characteristics, ungrouped.characteristics, strict=True):
        np.testing.assert_array_equal(a.woe, b.woe)
        np.testing.assert_array_equal(a.points, b.points)
    ours, theirs = grouped.score(split.test, 3), ungrouped.score(split.test, 3)
    np.testing.assert_array_equal(ours.points, theirs.points)
    assert ours.reasons.equals(theirs.reasons)
    auc = roc_auc_score(split.test_label, ours.probability)
    assert auc == roc_auc_score(split.test_label, theirs.probability)
    assert auc > 0.7


def check_groups(index: np.ndarray, counts: list[int], label: np.ndarray) -> None:
    rows, weight = scorecard.distinct_rows(index, counts, label)
    combined = np.column_stack([index, label])
    expected, expected_counts = np.unique(combined, axis=0, return_counts=True)
    assert weight.sum() == len(label)
    got = combined[rows]
    order = np.lexsort(got.T[::-1])  # rows in the order np.unique(axis=0) gives
    np.testing.assert_array_equal(got[order], expected)
    np.testing.assert_array_equal(weight[order], expected_counts)


def test_distinct_rows_counts_each_combination_of_bins_and_label():
    rng = np.random.default_rng(0)
    counts = [3, 6, 2, 11]
    index = np.column_stack([rng.integers(0, c, 5000) for c in counts])
    check_groups(index, counts, rng.integers(0, 2, 5000).astype(np.int8))


def test_distinct_rows_with_more_combinations_than_rows():
    rng = np.random.default_rng(1)
    counts = [252] * 12  # 2·252**12 > 2**63: only renumbering keeps the key in an int64
    index = np.column_stack([rng.integers(0, 3, 3000) * (c // 3) for c in counts])
    label = rng.integers(0, 2, 3000).astype(np.int8)
    index[1500:] = index[:1500]  # repeated combinations, with labels of their own
    check_groups(index, counts, label)
