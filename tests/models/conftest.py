"""Synthetic joint-modeling data as the room would hand it to a jail, and trained models on it.

Bank outcomes joined to department features on the key, split (seeded, stratified) by the room.
"""

from __future__ import annotations

import sys
import textwrap
import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.model_selection import train_test_split

from models import entry
from saferoom import synthetic

FEATURES = {
    "tax_annual": {"annual_tax": "int", "tax_arrears": "bool"},
    "social_insurance": {"headcount": "int", "arrears_months": "int"},
    "utilities": {"overdue_months": "int"},
    "court_records": {"judgments": "int"},
    "market_registry": {"industry": "string", "founded": "date"},
}
FEATURE_TYPES = {
    f"{dataset}.{field}": kind for dataset, fields in FEATURES.items() for field, kind in fields.items()
}
ARROW_TYPES = {"int": pa.int64(), "bool": pa.bool_(), "string": pa.string(), "date": pa.date32()}
TEMPLATES = ("logistic_scorecard", "gradient_boosting")


@dataclass(frozen=True)
class Split:
    train: pa.Table  # features + __label
    test: pa.Table  # features only
    test_label: np.ndarray


def feature_table(frame: pd.DataFrame) -> pa.Table:
    """The features as typed Arrow columns with nulls, as the room's key join yields them."""
    table = pa.Table.from_pandas(frame[list(FEATURE_TYPES)], preserve_index=False)
    return pa.table(
        {name: table.column(name).cast(ARROW_TYPES[kind]) for name, kind in FEATURE_TYPES.items()}
    )


@pytest.fixture(scope="session")
def joined() -> pd.DataFrame:
    frames = synthetic.generate(20_000, seed=1)
    out = frames["loan_outcomes"][["uscc", "default_12m"]]
    for dataset, fields in FEATURES.items():
        columns = frames[dataset][["uscc", *fields]]
        out = out.merge(
            columns.rename(columns={f: f"{dataset}.{f}" for f in fields}),
            on="uscc",
            how="left",
            validate="one_to_one",
        )
    return out


@pytest.fixture(scope="session")
def split(joined: pd.DataFrame) -> Split:
    train, test = train_test_split(
        joined, test_size=0.3, stratify=joined["default_12m"], random_state=7
    )
    label = pa.array(train["default_12m"].to_numpy().astype(np.int8))
    return Split(
        feature_table(train).append_column("__label", label),
        feature_table(test),
        test["default_12m"].to_numpy().astype(np.int8),
    )


def job(template: str, seed: int = 1, **params: Any) -> dict[str, Any]:
    return {"template": template, "params": params, "seed": seed, "feature_types": FEATURE_TYPES}


def train(split: Split, template: str, seed: int = 1, **params: Any) -> dict[str, Any]:
    return entry.train({"train": split.train, "test": split.test}, job(template, seed, **params), {})


@pytest.fixture(scope="session")
def trained(split: Split) -> dict[str, dict[str, Any]]:
    """Each template trained once with its defaults."""
    return {template: train(split, template) for template in TEMPLATES}


def install_user_code(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Make `source` importable as module `user_code`, as the jail's bootstrap does."""
    module = types.ModuleType("user_code")
    exec(compile(textwrap.dedent(source), "user_code.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "user_code", module)


def applicant(split: Split, **changes: Any) -> pa.Table:
    """One applicant: the first test row with no arrears and no court record, then `changes`
    (feature name -> value)."""
    frame = split.test.to_pandas()
    clean = (
        frame["tax_annual.tax_arrears"].eq(False)
        & frame["social_insurance.arrears_months"].eq(0)
        & frame["utilities.overdue_months"].eq(0)
        & frame["court_records.judgments"].isna()
    )
    row = split.test.slice(int(np.flatnonzero(clean.to_numpy())[0]), 1)
    for name, value in changes.items():
        field = row.schema.field(name)
        row = row.set_column(row.schema.get_field_index(name), field, pa.array([value], field.type))
    return row
