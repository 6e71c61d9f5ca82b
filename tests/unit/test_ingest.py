"""Upload validation: types, roles, domains and keys; the first bad row is named, never its value."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from saferoom import uscc
from saferoom.dataset_spec import DatasetCreate
from saferoom.errors import InvalidData
from saferoom.ingest import BatchValidator, read_csv, read_parquet

SPEC = DatasetCreate.model_validate(
    {
        "name": "tax_annual",
        "key": "uscc",
        "columns": [
            {"name": "uscc", "type": "string", "role": "key"},
            {"name": "region", "type": "string", "role": "dimension", "values": ["410302", "410311"]},
            {"name": "annual_tax", "type": "int", "role": "measure", "bounds": [0, 1000]},
            {"name": "ratio", "type": "float", "role": "measure", "bounds": [0, 1]},
            {"name": "tax_arrears", "type": "bool", "role": "flag"},
            {"name": "founded", "type": "date", "role": "attribute"},
        ],
    }
)
CODES = list(uscc.generate(np.random.default_rng(1), 5, ["410302"]))
HEADER = "uscc,region,annual_tax,ratio,tax_arrears,founded\n"


def _rows(n: int = 3) -> list[str]:
    return [f"{CODES[i]},410302,{100 * i},0.5,false,2020-01-0{i + 1}" for i in range(n)]


def _read(text: str) -> pa.Table:
    return pa.Table.from_batches(list(read_csv(io.BytesIO(text.encode()), BatchValidator(SPEC))))


def test_valid_csv_is_typed() -> None:
    table = _read(HEADER + "\n".join(_rows()) + "\n")
    assert table.schema == SPEC.arrow_schema()
    assert table.column("annual_tax").to_pylist() == [0, 100, 200]
    assert table.column("tax_arrears").to_pylist() == [False, False, False]


def test_measures_outside_bounds_are_valid_data() -> None:
    rows = _rows(1)
    rows[0] = rows[0].replace(",0,0.5,", ",999999,7.5,")
    assert _read(HEADER + rows[0] + "\n").column("annual_tax").to_pylist() == [999999]


def test_columns_in_any_order_and_empty_values_as_null() -> None:
    text = "founded,tax_arrears,ratio,annual_tax,region,uscc\n" f",,,,410311,{CODES[0]}\n"
    table = _read(text)
    assert table.column("annual_tax").to_pylist() == [None]
    assert table.column("region").to_pylist() == ["410311"]


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        ("uscc", "91410300MA00000000"),
        ("region", "999999"),
        ("annual_tax", "12.5"),
        ("annual_tax", "SECRET123"),
        ("ratio", "abc"),
        ("tax_arrears", "maybe"),
        ("founded", "2021-02-30"),
    ],
)
def test_first_bad_row_and_column_are_named_without_the_value(column: str, bad: str) -> None:
    rows = _rows(3)
    fields = rows[1].split(",")
    fields[HEADER.strip().split(",").index(column)] = bad
    rows[1] = ",".join(fields)
    with pytest.raises(InvalidData) as info:
        _read(HEADER + "\n".join(rows) + "\n")
    assert info.value.detail == {"row": 2, "column": column}
    assert bad not in info.value.message


def test_missing_key_and_wrong_header() -> None:
    rows = _rows(2)
    rows[1] = "," + rows[1].split(",", 1)[1]
    with pytest.raises(InvalidData) as info:
        _read(HEADER + "\n".join(rows) + "\n")
    assert info.value.detail == {"row": 2, "column": "uscc"}
    with pytest.raises(InvalidData) as info:
        _read("uscc,region,annual_tax\n")
    assert "ratio" in info.value.detail["missing_columns"]


def test_ragged_line_names_row_without_echoing_it() -> None:
    text = HEADER + _rows(1)[0] + "\n" + "SECRETVALUE,1\n"
    with pytest.raises(InvalidData) as info:
        _read(text)
    assert info.value.detail.get("row") == 2
    assert "SECRETVALUE" not in info.value.message


def test_parquet_with_native_types() -> None:
    table = _read(HEADER + "\n".join(_rows()) + "\n")
    buf = io.BytesIO()
    pq.write_table(table, buf)
    out = pa.Table.from_batches(list(read_parquet(buf.getvalue(), BatchValidator(SPEC))))
    assert out.equals(table)


def test_row_numbers_count_across_batches() -> None:
    validator = BatchValidator(SPEC)
    good = pa.table({"uscc": CODES[:2], "region": ["410302"] * 2, "annual_tax": ["1", "2"],
                     "ratio": ["0", "1"], "tax_arrears": ["true", "0"],
                     "founded": ["2020-01-01"] * 2})
    validator.convert(good.to_batches()[0])
    bad = good.set_column(2, "annual_tax", pa.array(["1", "x"]))
    with pytest.raises(InvalidData) as info:
        validator.convert(bad.to_batches()[0])
    assert info.value.detail["row"] == 4
