"""The released metrics: AUC equal to scikit-learn's, KS, and small deciles suppressed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from saferoom.model_metrics import evaluate


@pytest.mark.parametrize("n", [50, 199, 5000])
def test_auc_is_scikit_learns_even_with_tied_scores(n):
    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.3).astype(np.int8)
    y[:2] = [0, 1]
    score = np.round(rng.random(n) * 0.5 + y * 0.2, 2)  # rounding makes many ties
    metrics = evaluate(y, score)
    assert metrics["auc"] == round(float(roc_auc_score(y, score)), 4)
    assert 0 < metrics["ks"] <= 1 and metrics["n_test"] == n
    small = [d for d in metrics["calibration"] if d["n"] < 20]
    assert all(d.get("suppressed") and d["observed_rate"] is None for d in small)
    assert (n >= 200) == (not small)


def test_one_class_releases_no_metrics():
    assert evaluate(np.zeros(30, dtype=np.int8), np.linspace(0, 1, 30))["auc"] is None
