"""Reading features (types, missing values, categories), binning, WOE smoothing and the top-k
reason selection, each on small hand-made inputs.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from models.binning import MISSING, fit_bins, weights_of_evidence
from models.features import OTHER, Feature, FeatureEncoder
from models.reasons import no_reasons, top_reasons
from models.training import read_label


def encode(table: pa.Table, types: dict[str, str] | None = None) -> tuple[FeatureEncoder, np.ndarray]:
    encoder = FeatureEncoder.fit(table, types or {})
    return encoder, encoder.matrix(table)


def test_types_are_inferred_and_read_as_numbers():
    table = pa.table({
        "i": pa.array([1, None, 3], pa.int32()),
        "f": pa.array([0.5, float("inf"), None]),
        "b": pa.array([True, False, None]),
        "d": pa.array([dt.date(1970, 1, 2), None, dt.date(2000, 1, 1)]),
        "t": pa.array([dt.datetime(1970, 1, 3, 12)] * 3, pa.timestamp("us")),
    })
    encoder, matrix = encode(table)
    assert [f.type for f in encoder.features] == ["int", "float", "bool", "date", "date"]
    np.testing.assert_array_equal(matrix[:, 0], [1, np.nan, 3])
    np.testing.assert_array_equal(matrix[:, 1], [0.5, np.nan, np.nan])  # inf reads as missing
    np.testing.assert_array_equal(matrix[:, 2], [1, 0, np.nan])
    np.testing.assert_array_equal(matrix[:, 3], [1, np.nan, 10957])  # days since 1970-01-01
    np.testing.assert_array_equal(matrix[:, 4], [2, 2, 2])


def test_declared_types_convert_strings_and_ints():
    table = pa.table({"d": ["1970-01-11", None], "flag": pa.array([1, 0], pa.int8()),
                      "code": pa.array([7, 7], pa.int64())})
    encoder, matrix = encode(table, {"d": "date", "flag": "bool", "code": "string"})
    np.testing.assert_array_equal(matrix[:, 0], [10, np.nan])
    np.testing.assert_array_equal(matrix[:, 1], [1, 0])
    assert encoder.features[2].categorical


def test_unreadable_values_name_the_column_never_the_value():
    table = pa.table({"amount": ["12", "secret-value-42"]})
    with pytest.raises(ValueError, match="feature 'amount' cannot be read as int") as caught:
        encode(table, {"amount": "int"})
    assert "secret" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_unreadable_arrow_type_is_refused():
    with pytest.raises(ValueError, match="feature 'tags' has Arrow type list<item: string>"):
        encode(pa.table({"tags": pa.array([["a"], ["b"]])}))


def test_feature_types_must_name_features():
    with pytest.raises(ValueError, match=r"not features: \['ghost'\]"):
        encode(pa.table({"x": [1, 2]}), {"ghost": "int"})


def test_string_categories_are_learned_in_training_and_fixed_after():
    values = ["a"] * 50 + ["b"] * 30 + ["rare"] * 2 + [None] * 3
    encoder, matrix = encode(pa.table({"s": pa.array(values).dictionary_encode()}))
    feature = encoder.features[0]
    assert feature == Feature("s", "string", ("a", "b"))  # most frequent first; "rare" too rare
    assert set(np.unique(matrix[:-3, 0])) == {0, 1, 2} and np.isnan(matrix[-3:, 0]).all()
    later = encoder.matrix(pa.table({"s": ["b", "never seen", None, "a"]}))
    np.testing.assert_array_equal(later[:, 0], [1, 2, np.nan, 0])
    frame = encoder.frame(pa.table({"s": ["b", "never seen", None, "a"]}))
    assert isinstance(frame["s"].dtype, pd.CategoricalDtype)
    assert list(frame["s"].cat.categories) == ["a", "b", OTHER]
    assert frame["s"].tolist()[:2] == ["b", OTHER] and pd.isna(frame["s"].iloc[2])


def test_the_label_must_be_a_clean_zero_one_column():
    assert read_label(pa.table({"__label": pa.array([True, False])})).tolist() == [1, 0]
    for bad, message in [
        (pa.table({"y": [0, 1]}), "no __label"),
        (pa.table({"__label": [0, None]}), "missing values"),
        (pa.table({"__label": [0, 2]}), "must be 0 or 1"),
        (pa.table({"__label": [0.0, 1.0]}), "0/1 integers or booleans"),
        (pa.table({"__label": [1, 1]}), "one class only"),
    ]:
        with pytest.raises(ValueError, match=message):
            read_label(bad)


def test_ties_share_a_bin_and_cut_points_are_rounded():
    rng = np.random.default_rng(0)
    arrears = np.where(rng.random(1000) < 0.85, 0, rng.integers(1, 9, 1000)).astype(float)
    bins = fit_bins(Feature("arrears", "int"), arrears, 5)
    assert bins.labels == ("< 1", ">= 1", MISSING)
    tax = np.round(np.exp(rng.normal(10, 1.2, 2000))).astype(np.float64)
    tax[:100] = np.nan
    bins = fit_bins(Feature("tax", "int"), tax, 5)
    assert len(bins.cuts) == 4
    assert all(float(f"{c:.2g}") == c for c in bins.cuts)
    index = bins.assign(tax)
    assert (index[:100] == 5).all()
    counts = np.bincount(index[100:], minlength=5)
    assert counts.min() > 0.15 * 1900  # still roughly quantile bins after rounding


def test_date_cuts_fall_on_the_first_of_a_month():
    days = np.arange(10_000, 14_000, 3, dtype=float)
    bins = fit_bins(Feature("founded", "date"), days, 4)
    assert all(str(np.datetime64(int(c), "D")).endswith("-01") for c in bins.cuts)
    assert bins.labels[0] == "< 2000-02-01" and bins.labels[-1] == MISSING  # day 11,000 is 2000-02-12


def test_categorical_bins_are_the_codes_and_missing():
    feature = Feature("s", "string", ("a", "b"))
    bins = fit_bins(feature, np.array([0.0, 1, 2, np.nan]), 5)
    assert bins.labels == ("a", "b", OTHER, MISSING)
    assert bins.assign(np.array([0.0, 1, 2, np.nan])).tolist() == [0, 1, 2, 3]
    flag = fit_bins(Feature("f", "bool"), np.array([0.0, 1]), 5)
    assert flag.labels == ("false", "true", MISSING)


def test_a_constant_or_empty_numeric_feature_has_one_bin_and_missing():
    bins = fit_bins(Feature("x", "float"), np.array([3.0, 3.0, np.nan]), 5)
    assert bins.labels == ("any value", MISSING)
    assert bins.assign(np.array([3.0, 99.0, np.nan])).tolist() == [0, 0, 1]


def test_smoothed_woe_is_zero_for_an_empty_bin_and_signed_by_risk():
    # bin 0: 90 good 10 bad; bin 1: 10 good 10 bad; bin 2: empty.
    index = np.array([0] * 100 + [1] * 20)
    label = np.array([0] * 90 + [1] * 10 + [0] * 10 + [1] * 10, dtype=np.int8)
    woe = weights_of_evidence(index, 3, label)
    assert woe[2] == 0.0
    assert woe[0] > 0 > woe[1]
    assert np.isfinite(woe).all()
    only_goods = weights_of_evidence(np.array([0, 0, 1, 1]), 2, np.array([0, 0, 0, 1], np.int8))
    assert np.isfinite(only_goods).all()


def test_top_reasons_are_the_largest_positive_losses_in_order():
    loss = np.array([[1.0, 5.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, -1.0, 2.0]])
    ids = np.tile(np.arange(4), (3, 1))
    labels = pa.array(["a", "b", "c", "d"])
    assert top_reasons(loss, ids, labels, 3).to_pylist() == [["b", "d", "a"], [], ["a", "b", "d"]]
    assert top_reasons(loss, ids, labels, 10).to_pylist()[0] == ["b", "d", "a"]
    assert top_reasons(loss, ids, labels, 0).to_pylist() == [[], [], []]
    assert no_reasons(2).type == pa.list_(pa.string())
