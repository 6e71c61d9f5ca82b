"""The `logistic_scorecard` template: WOE bins, logistic regression, points and reason codes.

Scoring needs no scikit-learn: a bin lookup per characteristic and one dot product per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from models.binning import Bins, fit_bins, weights_of_evidence
from models.features import FeatureEncoder
from models.fitted import Scored
from models.reasons import no_reasons, top_reasons
from models.scaling import Scaling


@dataclass(frozen=True)
class Characteristic:
    """One feature of the card: its bins, each bin's WOE and each bin's points."""

    bins: Bins
    woe: NDArray[np.float64]
    points: NDArray[np.int64]


@dataclass(frozen=True)
class Scorecard:
    """A fitted scorecard; the log-odds of default is intercept + Σ coef·woe."""

    encoder: FeatureEncoder
    characteristics: tuple[Characteristic, ...]
    coef: NDArray[np.float64]
    intercept: float
    scaling: Scaling

    def score(self, table: pa.Table, reasons: int) -> Scored:
        rows, width = table.num_rows, len(self.characteristics)
        woe = np.empty((rows, width), dtype=np.float64)
        total = np.zeros(rows, dtype=np.int64)
        index = np.empty((rows, width), dtype=np.intp) if reasons else None
        # Column by column, as the features are read: no row-major matrix of them.
        pairs = zip(self.characteristics, self.encoder.columns(table), strict=True)
        for j, (characteristic, values) in enumerate(pairs):
            bins = characteristic.bins.assign(values)
            woe[:, j] = characteristic.woe[bins]
            total += characteristic.points[bins]
            if index is not None:
                index[:, j] = bins
        logit = self.intercept + woe @ self.coef
        # exp(-log(1 + e^-x)): the logistic function without overflow for any logit.
        probability = np.exp(-np.logaddexp(0.0, -logit))
        if index is None:
            return Scored(probability, total, no_reasons(len(total)))
        # Reason codes: the characteristics where the applicant lost most against the best
        # attribute of that characteristic.
        label_ids = index + self.label_offsets()
        lost = np.concatenate(
            [(c.points.max() - c.points).astype(np.float64) for c in self.characteristics]
        )[label_ids]
        return Scored(probability, total, top_reasons(lost, label_ids, self.labels(), reasons))

    def label_offsets(self) -> NDArray[np.intp]:
        sizes = [c.bins.count for c in self.characteristics]
        return np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.intp)

    def labels(self) -> Any:
        """Reason texts for every (characteristic, bin), e.g. "tax_annual.tax_arrears: true"."""
        return pa.array(
            [f"{c.bins.feature.name}: {label}" for c in self.characteristics
             for label in c.bins.labels],
            pa.string(),
        )


def fit_scorecard(
    encoder: FeatureEncoder,
    matrix: NDArray[np.float64],
    label: NDArray[np.int8],
    params: Mapping[str, Any],
    seed: int,
) -> Scorecard:
    """Bin each feature, weigh the bins by evidence, regress the label on the WOE, scale.

    `seed` is taken for a uniform signature only: binning and lbfgs involve no randomness.
    """
    bins, columns = [], []
    for j, feature in enumerate(encoder.features):
        values = np.ascontiguousarray(matrix[:, j])  # one copy instead of strided passes
        bins.append(fit_bins(feature, values, params["bins"]))
        columns.append(bins[j].assign_narrow(values))
    index = cast(NDArray[np.integer[Any]], np.array(columns).T)  # column-major: read by column
    # The design has few distinct rows (one WOE per bin). scikit-learn's lbfgs minimises
    # Σ w·loss / Σ w + |coef|² / (2·C·Σ w), so each distinct (bins, label) once, weighted by its
    # count, is the objective of every training row, at a fraction of the cost per iteration.
    rows, counts = distinct_rows(index, [b.count for b in bins], label)
    # The same counts give each bin's goods and bads: the WOE without another pass over the rows.
    woes = [
        weights_of_evidence(index[rows, j], b.count, label[rows], counts)
        for j, b in enumerate(bins)
    ]
    design = np.column_stack([woe[index[rows, j]] for j, woe in enumerate(woes)])
    regression = LogisticRegression(C=params["C"], max_iter=1000)  # lbfgs: no randomness
    regression.fit(design, label[rows], sample_weight=counts)
    coef = np.asarray(regression.coef_[0], dtype=np.float64)
    intercept = float(regression.intercept_[0])
    scaling = Scaling(params["base_score"], params["base_odds"], params["pdo"])
    characteristics = tuple(
        Characteristic(b, woe, scaling.attribute_points(woe, coef[j], intercept, len(bins)))
        for j, (b, woe) in enumerate(zip(bins, woes, strict=True))
    )
    return Scorecard(encoder, characteristics, coef, intercept, scaling)


def distinct_rows(
    index: NDArray[np.integer[Any]], counts: Sequence[int], label: NDArray[np.int8]
) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """One row of each distinct combination of bins (`index`, `counts` bins per column) and
    label, and how many rows have that combination.

    Each combination is numbered in one int64 (mixed radix) and counted with `bincount`: no sort
    and no row comparison while the numbers stay below the row count, as they do for a handful
    of characteristics of a few bins each.
    """
    rows = len(label)
    key = label.astype(np.int64)
    size = 2  # every key is below it
    for j, count in enumerate(counts):
        key = key * count + index[:, j]
        size *= count
        if size > rows:
            # Number only the combinations that occur: bincount's array stays no longer than
            # the data, and the key never overflows however many characteristics there are.
            occurring, inverse = np.unique(key, return_inverse=True)
            key, size = inverse.astype(np.int64), len(occurring)
    weight = np.bincount(key, minlength=size)
    some_row = np.empty(size, dtype=np.intp)
    some_row[key] = np.arange(rows)  # any row of a combination will do: they are all alike
    present = np.flatnonzero(weight)
    return some_row[present], weight[present].astype(np.int64)
