"""The `gradient_boosting` template: HistGradientBoosting, with contribution-based reason codes.

A feature's contribution is how much the risk falls when it alone is set to a typical value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier

from models.features import FeatureEncoder
from models.fitted import Scored
from models.reasons import no_reasons, top_reasons

MAX_STACKED_ROWS = 1 << 20  # rows per predict call when scoring reasons: bounds the memory


@dataclass(frozen=True)
class Boosting:
    """A fitted boosting model and each feature's reference (typical) value; NaN is missing."""

    encoder: FeatureEncoder
    model: Any  # a fitted HistGradientBoostingClassifier
    reference: NDArray[np.float64]

    def probability(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        if matrix.shape[0] == 0:
            return np.empty(0)  # scikit-learn refuses an empty batch
        return np.asarray(self.model.predict_proba(matrix)[:, 1], dtype=np.float64)

    def score(self, table: pa.Table, reasons: int) -> Scored:
        matrix = self.encoder.matrix(table)
        if reasons == 0:
            return Scored(self.probability(matrix), None, no_reasons(matrix.shape[0]))
        probability, contribution = self.contributions(matrix)
        labels = pa.array(self.encoder.names, pa.string())
        ids = np.broadcast_to(np.arange(matrix.shape[1], dtype=np.intp), matrix.shape)
        return Scored(probability, None, top_reasons(contribution, ids, labels, reasons))

    def contributions(
        self, matrix: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Each row's probability, and for each feature the drop in it when that feature alone
        takes its reference value: one predict call per chunk, over the chunk and a copy of
        each (row, feature) whose value differs from the reference.

        A value already at the reference (NaN counting as equal to NaN) leaves the row as it is,
        so its drop is exactly 0: a tree's prediction for a row depends on that row alone. Most
        values of counts and flags sit at their reference, so most copies are skipped.
        """
        rows, k = matrix.shape
        probability = np.empty(rows)
        contribution = np.zeros((rows, k))
        step = max(1, MAX_STACKED_ROWS // (k + 1))  # at most k copies per row: bounded memory
        reference_missing = np.isnan(self.reference)
        for start in range(0, rows, step):
            chunk = matrix[start : start + step]
            differs = (chunk != self.reference) & ~(np.isnan(chunk) & reference_missing)
            row, feature = np.nonzero(differs)
            copies = chunk[row]
            copies[np.arange(len(row)), feature] = self.reference[feature]
            p = self.probability(np.concatenate([chunk, copies]))
            probability[start : start + step] = p[: len(chunk)]
            contribution[start + row, feature] = p[row] - p[len(chunk) :]
        return probability, contribution


def reference_values(encoder: FeatureEncoder, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """Typical training value per feature: missing if most rows lack it, else the median (numbers)
    or the most frequent code (categories)."""
    reference = np.full(matrix.shape[1], np.nan)
    for j, feature in enumerate(encoder.features):
        present = matrix[~np.isnan(matrix[:, j]), j]
        if 2 * present.size <= matrix.shape[0]:
            continue
        if feature.categorical:
            codes, counts = np.unique(present, return_counts=True)
            reference[j] = codes[np.argmax(counts)]  # ties: the lowest code, deterministically
        else:
            reference[j] = np.median(present)
    return reference


def fit_boosting(
    encoder: FeatureEncoder,
    matrix: NDArray[np.float64],
    label: NDArray[np.int8],
    params: Mapping[str, Any],
    seed: int,
) -> Boosting:
    """Fit on the encoded matrix; string and bool features are native categorical splits."""
    categorical = np.array([f.categorical for f in encoder.features])
    model = HistGradientBoostingClassifier(
        **params,
        categorical_features=categorical if categorical.any() else None,
        random_state=seed,
    )
    model.fit(matrix, label)
    return Boosting(encoder, model, reference_values(encoder, matrix))
