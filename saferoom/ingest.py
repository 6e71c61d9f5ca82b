"""Turn an uploaded CSV or Parquet stream into validated, typed Arrow batches.

Batch at a time and vectorized; the first bad row stops everything and is named, its value never.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from saferoom import uscc
from saferoom.dataset_spec import ARROW_TYPES, ColumnSpec, DatasetCreate
from saferoom.errors import InvalidData

CSV_BLOCK_BYTES = 8 << 20
PARQUET_BATCH_ROWS = 256_000
_INT = r"^\s*[+-]?[0-9]{1,18}\s*$"
_FLOAT = r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
_TRUE = ["true", "1", "t", "yes", "y"]
_BOOL = [*_TRUE, "false", "0", "f", "no", "n"]


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _first_false(mask: pa.Array | pa.ChunkedArray) -> int | None:
    """Index of the first false (nulls count as fine: they were checked separately)."""
    filled = pc.fill_null(mask, True)
    if pc.all(filled).as_py():
        return None
    return int(pc.index(filled, False).as_py())


def _in(col: pa.Array, values: pa.Array) -> pa.Array:
    """Membership where a null counts as fine (is_in alone reports nulls as absent)."""
    return pc.or_(pc.is_in(col, value_set=values), pc.is_null(col))


def _fail(row_offset: int, index: int, column: str, why: str) -> InvalidData:
    row = row_offset + index + 1
    return InvalidData(
        f"row {row}, column {column!r}: {why}; nothing was written",
        {"row": row, "column": column},
    )


def _convert(col: pa.Array, spec: ColumnSpec, domain: pa.Array | None, offset: int) -> pa.Array:
    """Check and convert one string column of a batch to the declared type."""
    if col.null_count and spec.role == "key":
            raise _fail(offset, _first_false(pc.is_valid(col)) or 0, spec.name, "missing key")
    if spec.role == "key":
        bad = uscc.first_invalid(col)
        if bad is not None:
            raise _fail(offset, bad, spec.name, "not a valid unified social credit code")
        return col
    out: pa.Array
    if spec.type == "string":
        out = col
    elif spec.type in ("int", "float"):
        ok = pc.match_substring_regex(col, _INT if spec.type == "int" else _FLOAT)
        bad = _first_false(ok)
        if bad is not None:
            raise _fail(offset, bad, spec.name, f"not a valid {spec.type}")
        out = pc.cast(pc.utf8_trim_whitespace(col), ARROW_TYPES[spec.type])
    elif spec.type == "bool":
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        bad = _first_false(_in(lowered, pa.array(_BOOL)))
        if bad is not None:
            raise _fail(offset, bad, spec.name, "not a valid bool (true/false)")
        out = pc.if_else(pc.is_valid(lowered), pc.is_in(lowered, value_set=pa.array(_TRUE)), None)
    else:  # date
        text = pc.utf8_trim_whitespace(col)
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        # strptime rolls 2021-02-30 over to March: a real date prints back as it was written.
        same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text)
        bad = _first_false(pc.or_(pc.fill_null(same, False), pc.is_null(col)))
        if bad is not None:
            raise _fail(offset, bad, spec.name, "not a valid date (YYYY-MM-DD)")
        out = pc.cast(parsed, pa.date32())
    if domain is not None:
        bad = _first_false(_in(out, domain))
        if bad is not None:
            raise _fail(offset, bad, spec.name, "value outside the declared domain")
    return out


class BatchValidator:
    """Validates string batches against a dataset's declared schema, keeping the row count."""

    def __init__(self, spec: DatasetCreate) -> None:
        self.spec = spec
        self.schema = spec.arrow_schema()
        self.domains = {c.name: spec.domain(c) for c in spec.columns}
        self.rows = 0

    def check_header(self, names: list[str]) -> None:
        declared = [c.name for c in self.spec.columns]
        missing = [n for n in declared if n not in names]
        unknown = [n for n in names if n not in declared]
        if missing or unknown or len(set(names)) != len(names):
            # Only a count of the others: a CSV without a header row puts its first data row
            # here, and a value can look like any name.
            raise InvalidData(
                "the header must name each declared column exactly once; nothing was written",
                {"missing_columns": missing, "unknown_column_count": len(unknown)},
            )

    def convert(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for spec in self.spec.columns:
            col = batch.column(batch.schema.get_field_index(spec.name))
            if not pa.types.is_string(col.type):
                col = pc.cast(col, pa.string())
            arrays.append(_convert(col, spec, self.domains[spec.name], self.rows))
        self.rows += batch.num_rows
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def read_csv(source: Readable, validator: BatchValidator) -> Iterator[pa.RecordBatch]:
    """Stream a UTF-8 CSV with a header row; every column is read as text, then converted."""
    bad_line: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_line.append(row.number if row.number is not None else -1)
        return "error"

    names = [c.name for c in validator.spec.columns]
    try:
        reader = pacsv.open_csv(
            source,
            # Single-threaded so that a malformed line's number is known (threads lose it).
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
        validator.check_header(reader.schema.names)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            yield validator.convert(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        # Arrow's message quotes the offending line: never pass it on.
        if bad_line and bad_line[0] > 0:
            row = bad_line[0] - 1  # physical line 1 is the header
            raise InvalidData(
                f"row {row}: wrong number of fields; nothing was written", {"row": row}
            ) from None
        raise InvalidData("the body is not a valid UTF-8 CSV with a header row; "
                          "nothing was written") from None


def read_parquet(body: bytes, validator: BatchValidator) -> Iterator[pa.RecordBatch]:
    try:
        pf = pq.ParquetFile(io.BytesIO(body))
        validator.check_header(pf.schema_arrow.names)
        for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            yield validator.convert(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError):
        raise InvalidData("the body is not a valid Parquet file; nothing was written") from None
