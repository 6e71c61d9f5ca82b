"""Subject codes to the engine's integer subject ids by binary search over their hashes.

A scoring request's codes against 3.4M subjects: DuckDB's hash join scanned the whole subjects
table each time (~20 ms even for one code, ~40 ms for 10,000); this takes a few ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from saferoom.state import registered


class SubjectIds:
    """A snapshot of the engine's `subjects (code, sid)` table, sorted by DuckDB's 64-bit
    `hash(code)`; kept until new subjects arrive.

    A code found by its hash is then compared in full, so a hash shared with some other code
    never returns that code's id. If two codes of the table share a hash (one in ~10^12 at
    this size), `unique` is False and the caller joins in DuckDB instead.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        table = con.sql("SELECT hash(code) AS h, sid, code FROM subjects ORDER BY h"
                        ).to_arrow_table()
        self._hashes = np.asarray(table.column("h").to_numpy(), dtype=np.uint64)
        self._sids = table.column("sid").to_numpy()  # as stored (INTEGER): half of int64
        self._codes = table.column("code").combine_chunks()
        self.unique = not bool(np.any(self._hashes[1:] == self._hashes[:-1]))

    def of(self, con: duckdb.DuckDBPyConnection, subjects: Sequence[str]
           ) -> npt.NDArray[np.int64]:
        """Each subject's id, -1 for a code the table does not hold. Needs `unique`."""
        sids = np.full(len(subjects), -1, dtype=np.int64)
        if not subjects or self._hashes.size == 0:
            return sids
        codes = pa.array(subjects, pa.string())
        with registered(con, "wanted", pa.table({"pos": pa.array(range(len(subjects)),
                                                                 pa.int32()),
                                                 "code": codes})):
            found = con.sql("SELECT pos, hash(code) AS h FROM wanted").fetchnumpy()
        hashes = np.empty(len(subjects), dtype=np.uint64)
        hashes[np.asarray(found["pos"], dtype=np.int64)] = found["h"]
        at = np.minimum(np.searchsorted(self._hashes, hashes), self._hashes.size - 1)
        same = pc.equal(self._codes.take(pa.array(at)), codes).fill_null(False)
        hit = np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
        sids[hit] = self._sids[at[hit]]
        return sids
