"""Feature columns from Arrow to numbers: the matrix templates share and the frame custom code sees.

String categories are learned on the training rows and applied unchanged when scoring.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

FeatureType = Literal["int", "float", "bool", "string", "date"]
FEATURE_TYPES: frozenset[str] = frozenset(get_args(FeatureType))
OTHER = "(other)"  # the category of strings too rare in training, or never seen there
MAX_CATEGORIES = 250  # below HistGradientBoosting's 255 bins, leaving one code for OTHER
MIN_CATEGORY_SHARE = 0.005  # a rarer category joins OTHER: too few rows to learn it from
MIN_CATEGORY_ROWS = 5

ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


@dataclass(frozen=True)
class Feature:
    """One feature column: its name ("dataset.field"), its type, and, for strings, the categories
    that keep their own code (0..len-1); code len(categories) is OTHER."""

    name: str
    type: FeatureType
    categories: tuple[str, ...] = ()

    @property
    def categorical(self) -> bool:
        return self.type in ("string", "bool")


def infer_type(name: str, arrow_type: Any) -> FeatureType:
    """The feature type of an Arrow column whose type the job did not declare."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_null(arrow_type):
        return "float"  # an all-missing column: any numeric reading works
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type):
        return "date"
    raise ValueError(f"feature {name!r} has Arrow type {arrow_type}, which no template reads")


def decoded(column: Any) -> Any:
    """The column with any dictionary encoding undone (casts below need plain values)."""
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def as_strings(column: Any) -> Any:
    column = decoded(column)
    if pa.types.is_string(column.type):
        return column
    return pc.cast(column, pa.string())


def float_values(column: Any) -> NDArray[np.float64]:
    """Arrow nulls become NaN; so do infinities, which no bin or split can place."""
    floats = pc.cast(column, pa.float64())
    if floats.null_count:
        # Filled by Arrow, the column has no nulls left and numpy can view it without a copy.
        floats = pc.fill_null(floats, math.nan)
    values = np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64)
    finite = np.isfinite(values)
    # Arrow's zero-copy view is read-only: replace the array rather than write into it.
    return values if finite.all() else np.where(finite, values, np.nan)


def learn_categories(column: Any) -> tuple[str, ...]:
    """The strings frequent enough to keep their own code, most frequent first (ties by value)."""
    counts = pc.value_counts(as_strings(column))
    pairs = [
        (value, count)
        for value, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
        if value is not None and value != OTHER
    ]
    floor = max(MIN_CATEGORY_ROWS, math.ceil(MIN_CATEGORY_SHARE * len(column)))
    pairs = sorted((p for p in pairs if p[1] >= floor), key=lambda p: (-p[1], p[0]))
    return tuple(value for value, _ in pairs[:MAX_CATEGORIES])


def read_column(feature: Feature, column: Any) -> NDArray[np.float64]:
    """One column as floats: numbers as they are, bools 0/1, dates as days since 1970-01-01,
    strings as category codes (OTHER for unknown ones); NaN where missing."""
    try:
        return convert(feature, decoded(column))
    except ARROW_ERRORS:
        # Arrow's message may quote the offending value: name the column, never the value.
        raise ValueError(f"feature {feature.name!r} cannot be read as {feature.type}") from None


def convert(feature: Feature, column: Any) -> NDArray[np.float64]:
    if feature.type in ("int", "float"):
        return float_values(column)
    if feature.type == "bool":
        return float_values(pc.cast(column, pa.bool_()))
    if feature.type == "date":
        if not pa.types.is_date32(column.type):
            column = pc.cast(column, pa.date32())
        return float_values(pc.cast(column, pa.int32()))
    strings = as_strings(column)
    index = pc.index_in(strings, value_set=pa.array(feature.categories, pa.string()))
    codes = np.array(index.to_numpy(), dtype=np.float64)  # a copy: written below
    codes[np.isnan(codes)] = len(feature.categories)  # present but not a learned category
    codes[np.asarray(strings.is_null().to_numpy(), dtype=bool)] = np.nan
    return codes


@dataclass(frozen=True)
class FeatureEncoder:
    """The feature columns of a model, in training order, and how each is read."""

    features: tuple[Feature, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @classmethod
    def fit(cls, table: pa.Table, declared: Mapping[str, str]) -> FeatureEncoder:
        """Learn from the training features (label already removed) and the declared types."""
        unknown = sorted(set(declared) - set(table.column_names))
        if unknown:
            raise ValueError(f"feature_types names columns that are not features: {unknown}")
        if len(set(table.column_names)) != table.num_columns:
            raise ValueError("feature column names must be unique")
        if table.num_columns == 0:
            raise ValueError("the training table has no feature columns")
        features = []
        for name in table.column_names:
            column = table.column(name)
            kind = declared.get(name) or infer_type(name, column.type)
            if kind not in FEATURE_TYPES:
                raise ValueError(f"feature {name!r} has unknown type {kind!r}")
            categories: tuple[str, ...] = ()
            if kind == "string":
                try:
                    categories = learn_categories(column)
                except ARROW_ERRORS:
                    raise ValueError(f"feature {name!r} cannot be read as string") from None
            features.append(Feature(name, cast(FeatureType, kind), categories))
        return cls(tuple(features))

    def check_columns(self, table: pa.Table) -> None:
        """The table holds exactly this model's features (in any order)."""
        given = set(table.column_names)
        missing = [n for n in self.names if n not in given]
        extra = sorted(given - set(self.names))
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
        if extra:
            raise ValueError(f"unexpected columns (not features of this model): {extra}")

    def matrix(self, table: pa.Table) -> NDArray[np.float64]:
        """Rows × features, as floats (see `read_column`), in training order."""
        columns = self.columns(table)
        out = np.empty((table.num_rows, len(self.features)), dtype=np.float64)
        for j, column in enumerate(columns):
            out[:, j] = column
        return out

    def columns(self, table: pa.Table) -> Iterator[NDArray[np.float64]]:
        """The columns of `matrix`, one array each (possibly read-only), read as they are asked
        for: a template that works column by column needs no row-major copy."""
        self.check_columns(table)
        return (read_column(f, table.column(f.name)) for f in self.features)

    def frame(self, table: pa.Table) -> pd.DataFrame:
        """What custom code gets: float columns (bools 0/1, dates as days since 1970-01-01) and
        strings as pandas categoricals with the training categories plus OTHER; NaN if missing."""
        matrix = self.matrix(table)
        data: dict[str, Any] = {}
        for j, feature in enumerate(self.features):
            column = matrix[:, j]
            if feature.type == "string":
                codes = np.where(np.isnan(column), -1, column).astype(np.int64)
                data[feature.name] = pd.Categorical.from_codes(
                    codes, categories=pd.Index([*feature.categories, OTHER])
                )
            else:
                data[feature.name] = column
        return pd.DataFrame(data, columns=list(self.names))
