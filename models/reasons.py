"""Reason codes: per applicant, the characteristics that cost the most, as an Arrow list column.

Vectorised over rows: one argsort and one `take`, whatever the batch size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

REASONS_TYPE = pa.list_(pa.string())


def no_reasons(rows: int) -> Any:
    """An empty reason list for each of `rows` rows (models that give no reasons)."""
    offsets = pa.array(np.zeros(rows + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array([], pa.string()))


def top_reasons(
    loss: NDArray[np.float64], label_ids: NDArray[np.intp], labels: Any, count: int
) -> Any:
    """For each row of `loss` (rows × characteristics), the labels of the `count` characteristics
    with the largest positive loss, largest first; `label_ids[i, j]` indexes `labels` (a pyarrow
    string array) for row i's characteristic j. A loss of zero or less is never a reason."""
    rows, width = loss.shape
    count = min(count, width)
    if count == 0 or rows == 0:
        return no_reasons(rows)
    # Stable, so equal losses keep the characteristics' training order: same input, same reasons.
    order = np.argsort(-loss, axis=1, kind="stable")[:, :count]
    top_loss = np.take_along_axis(loss, order, axis=1)
    top_ids = np.take_along_axis(label_ids, order, axis=1)
    keep = top_loss > 0
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    values = labels.take(pa.array(top_ids[keep]))  # row-major: each row's picks stay in order
    return pa.ListArray.from_arrays(pa.array(offsets), values)
