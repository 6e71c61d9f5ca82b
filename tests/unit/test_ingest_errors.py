"""A header that is not one: the first data row of a headerless CSV is never echoed back."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pytest

from saferoom import uscc
from saferoom.dataset_spec import DatasetCreate
from saferoom.errors import InvalidData
from saferoom.ingest import BatchValidator, read_csv

SPEC = DatasetCreate.model_validate(
    {
        "name": "tax_annual",
        "key": "uscc",
        "columns": [
            {"name": "uscc", "type": "string", "role": "key"},
            {"name": "region", "type": "string", "role": "dimension",
             "values": ["410302", "410311"]},
            {"name": "annual_tax", "type": "int", "role": "measure", "bounds": [0, 10_000_000]},
            {"name": "tax_arrears", "type": "bool", "role": "flag"},
        ],
    }
)
CODES = list(uscc.generate(np.random.default_rng(3), 2, ["410302"]))


def _error(text: str) -> InvalidData:
    with pytest.raises(InvalidData) as info:
        pa.Table.from_batches(list(read_csv(io.BytesIO(text.encode()), BatchValidator(SPEC))))
    return info.value


def test_headerless_csv_names_no_value_of_its_first_row() -> None:
    # "false" would pass as a column name: a value-shaped filter is not enough.
    first = [CODES[0], "410302", "7654321", "false"]
    text = ",".join(first) + "\n" + f"{CODES[1]},410311,1234,true\n"
    err = _error(text)
    shown = err.message + json.dumps(err.detail)
    for value in first:
        assert value not in shown
    assert err.detail == {"missing_columns": ["uscc", "region", "annual_tax", "tax_arrears"],
                          "unknown_column_count": 4}


def test_misspelt_header_still_says_what_is_missing() -> None:
    err = _error(f"uscc,region,anual_tax,tax_arrears\n{CODES[0]},410302,1,true\n")
    assert err.detail == {"missing_columns": ["annual_tax"], "unknown_column_count": 1}
