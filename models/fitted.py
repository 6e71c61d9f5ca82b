"""What every trained model offers the scorer: probabilities, points where it has them, reasons.

Templates and the custom-code wrapper implement `FittedModel`; the artifact pickles one of them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray


class Scored(NamedTuple):
    """One batch's scores, row for row with the input table."""

    probability: NDArray[np.float64]  # of label 1 (default)
    points: NDArray[np.int64] | None  # scorecard points; None for models without points
    reasons: Any  # pyarrow list<string> array: the top reason codes, worst first


class FittedModel(Protocol):
    def score(self, table: pa.Table, reasons: int) -> Scored:
        """Score the rows of `table` (this model's feature columns), with up to `reasons`
        reason codes each."""
        ...
