"""Synthetic rows with a dataset's schema, drawn from declared domains and bounds only.

They never look at real values, so a bank may see them and develop code against the schema.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from saferoom import uscc
from saferoom.dataset_spec import ARROW_TYPES, ColumnSpec, DatasetCreate

MAX_MOCK_ROWS = 10_000


def _column(spec: DatasetCreate, c: ColumnSpec, n: int, rng: np.random.Generator) -> pa.Array:
    if c.role == "key":
        # Division 999xxx: a valid code, yet no real firm's.
        return pa.array(uscc.generate(rng, n), type=pa.string())
    domain = spec.domain(c)
    if domain is not None:
        return domain.take(pa.array(rng.integers(0, len(domain), n)))
    if c.bounds is not None:
        lo, hi = c.bounds
        values = rng.uniform(lo, hi, n)
        if c.type == "int":
            return pa.array(np.round(values).astype(np.int64), type=pa.int64())
        return pa.array(values, type=ARROW_TYPES[c.type])
    if c.type == "bool":
        return pa.array(rng.random(n) < 0.5)
    if c.type == "int":
        return pa.array(rng.integers(0, 100, n), type=pa.int64())
    if c.type == "float":
        return pa.array(rng.normal(0, 1, n))
    if c.type == "date":
        start = date(2000, 1, 1)
        return pa.array([start + timedelta(days=int(d)) for d in rng.integers(0, 9000, n)],
                        type=pa.date32())
    return pa.array([f"{c.name}_{i}" for i in rng.integers(0, 1000, n)], type=pa.string())


def mock_table(spec: DatasetCreate, n: int, seed: int | None = None) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.Table.from_arrays(
        [_column(spec, c, n, rng) for c in spec.columns], schema=spec.arrow_schema()
    )
