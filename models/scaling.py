"""Scorecard scaling: log-odds to points, with a stated base score, base odds and PDO.

factor = pdo / ln 2, offset = base_score − factor·ln(base_odds), score = offset + factor·ln(odds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Scaling:
    """`base_score` points at `base_odds` (good:bad); every `pdo` more points double the odds."""

    base_score: float
    base_odds: float
    pdo: float

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def attribute_points(
        self, woe: NDArray[np.float64], coef: float, intercept: float, characteristics: int
    ) -> NDArray[np.int64]:
        """Points of each attribute (bin) of one characteristic, rounded to integers:
        −(woe·β + α/n)·factor + offset/n, where the model's log-odds of default is α + Σ β·woe
        over n characteristics, so the points of an applicant's bins add up to its score."""
        n = characteristics
        points = -(woe * coef + intercept / n) * self.factor + self.offset / n
        return np.rint(points).astype(np.int64)
