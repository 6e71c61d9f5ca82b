"""The dataset schema a department declares (`POST /v1/datasets`), validated at the edge.

Types and roles decide what each column may hold and how later uses may touch it.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

ColumnType = Literal["string", "int", "float", "bool", "date"]
ColumnRole = Literal["key", "dimension", "measure", "flag", "attribute"]
Classification = Literal["public", "internal", "sensitive"]
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
}
_ROLE_TYPES: dict[str, frozenset[str]] = {
    "key": frozenset({"string"}),
    "dimension": frozenset({"string", "int", "bool", "date"}),
    "measure": frozenset({"int", "float"}),
    "flag": frozenset({"bool"}),
    "attribute": frozenset({"string", "int", "float", "bool", "date"}),
}


def _fits(value: object, column_type: str) -> bool:
    if column_type == "string":
        return isinstance(value, str)
    if column_type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if column_type == "bool":
        return isinstance(value, bool)
    if column_type == "date":
        if isinstance(value, date):
            return True
        try:
            date.fromisoformat(str(value))
        except ValueError:
            return False
        return True
    return False


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    type: ColumnType
    role: ColumnRole
    values: list[str | int | bool | date] | None = Field(
        default=None, min_length=1, max_length=10_000
    )
    bounds: tuple[float, float] | None = None
    classification: Classification = "internal"
    description: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _role_fits_type(self) -> Self:
        if self.type not in _ROLE_TYPES[self.role]:
            raise ValueError(f"a {self.role} column cannot have type {self.type}")
        if self.values is not None:
            if self.role != "dimension":
                raise ValueError("only a dimension column declares values")
            if len(set(map(str, self.values))) != len(self.values):
                raise ValueError("values must be distinct")
            if not all(_fits(v, self.type) for v in self.values):
                raise ValueError(f"every value must be of type {self.type}")
        if self.role == "measure":
            if self.bounds is None:
                raise ValueError("a measure column needs bounds [lo, hi] for clipping")
            lo, hi = self.bounds
            if not lo < hi:
                raise ValueError("bounds must satisfy lo < hi")
        elif self.bounds is not None:
            raise ValueError("only a measure column declares bounds")
        return self


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    description: str = Field(default="", max_length=4000)
    key: str = "uscc"
    columns: list[ColumnSpec] = Field(min_length=2, max_length=500)
    max_rows_per_subject: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column names must be distinct")
        keys = [c for c in self.columns if c.role == "key"]
        if len(keys) != 1 or keys[0].name != self.key:
            raise ValueError(f"exactly one column must have role key, and it must be {self.key!r}")
        return self

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)

    def domain(self, column: ColumnSpec) -> pa.Array | None:
        """The declared public domain of a dimension as an Arrow array of the column's type."""
        if column.values is None:
            return None
        values = column.values
        if column.type == "date":
            values = [v if isinstance(v, date) else date.fromisoformat(str(v)) for v in values]
        return pa.array(values, type=ARROW_TYPES[column.type])

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in self.columns])
