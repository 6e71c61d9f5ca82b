"""A scoring batch's result as Arrow: probability, scorecard points (or null) and reason codes.

One schema for every model, so the service reads any model's scores the same way.
"""

from __future__ import annotations

import pyarrow as pa

from models.fitted import Scored
from models.reasons import REASONS_TYPE

SCORES_SCHEMA = pa.schema(
    [("probability", pa.float64()), ("points", pa.int64()), ("reasons", REASONS_TYPE)]
)


def scores_table(scored: Scored) -> pa.Table:
    rows = len(scored.probability)
    points = (
        pa.nulls(rows, pa.int64()) if scored.points is None else pa.array(scored.points, pa.int64())
    )
    return pa.Table.from_arrays(
        [pa.array(scored.probability, pa.float64()), points, scored.reasons], schema=SCORES_SCHEMA
    )
