"""The metrics the room itself computes from held-out predictions: AUC, KS, calibration.

Computed outside the jail, from scores the code returned for rows it never saw labelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import auc, roc_curve

MIN_DECILE = 20  # a decile with fewer rows is suppressed: its default rate is too revealing


def evaluate(y: npt.NDArray[np.int8], score: npt.NDArray[np.float64]) -> dict[str, Any]:
    """AUC, KS and a calibration table by score decile (small deciles suppressed)."""
    if len(np.unique(y)) < 2:
        return {"auc": None, "ks": None, "calibration": [], "n_test": len(y)}
    fpr, tpr, _ = roc_curve(y, score)
    order = np.argsort(score, kind="stable")
    deciles = []
    for i, part in enumerate(np.array_split(order, 10)):
        row: dict[str, Any] = {"decile": i + 1, "n": len(part)}
        if len(part) >= MIN_DECILE:
            row.update(mean_score=round(float(score[part].mean()), 4),
                       observed_rate=round(float(y[part].mean()), 4))
        else:
            row.update(mean_score=None, observed_rate=None, suppressed=True)
        deciles.append(row)
    return {
        # What roc_auc_score computes for two classes, without sorting the scores again.
        "auc": round(float(auc(fpr, tpr)), 4),
        "ks": round(float(np.max(tpr - fpr)), 4),
        "calibration": deciles,
        "n_test": len(y),
    }
