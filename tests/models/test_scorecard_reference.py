"""The scorecard's binning, WOE, feature reading and scoring, rewritten for speed, pinned bit for
bit against the code they replaced: that code is kept below, in this test only, as the reference.

Same cut points, labels, bins, WOE, points, coefficients and test scores, to the last bit, on
hand-picked and generated inputs: missing values, infinities, both zeros, booleans, strings,
dates, constant columns, fewer distinct values than bins, ties, huge magnitudes.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from models.binning import (
    MISSING,
    Bins,
    distinct_values,
    fit_bins,
    interval_labels,
    readable,
    weights_of_evidence,
)
from models.features import ARROW_ERRORS, OTHER, Feature, FeatureEncoder, as_strings, decoded
from models.params import read_training_job
from models.reasons import no_reasons, top_reasons
from models.scaling import Scaling
from models.scorecard import Characteristic, Scorecard, distinct_rows
from models.training import LABEL, read_label, train
from tests.models.conftest import FEATURE_TYPES

# --- The reference: the code before the rewrite ------------------------------------------------


def reference_assign(bins: Bins, values: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    if bins.feature.categorical:
        codes = np.where(missing, 0, values)
        index = np.clip(codes, 0, bins.count - 2).astype(np.intp)
    else:
        index = np.searchsorted(bins.cuts, values, side="right").astype(np.intp)
    index[missing] = bins.count - 1
    return index


def reference_fit_bins(feature: Feature, values: np.ndarray, bins: int) -> Bins:
    if feature.type == "string":
        return Bins(feature, np.empty(0), (*feature.categories, OTHER, MISSING))
    if feature.type == "bool":
        return Bins(feature, np.empty(0), ("false", "true", MISSING))
    dates = feature.type == "date"
    cuts = reference_quantile_cuts(values[~np.isnan(values)], bins, dates)
    return Bins(feature, cuts, (*interval_labels(cuts, dates), MISSING))


def reference_quantile_cuts(present: np.ndarray, bins: int, dates: bool) -> np.ndarray:
    distinct = np.unique(present)
    if distinct.size < 2:
        return np.empty(0)
    quantiles = np.quantile(present, np.arange(1, bins) / bins)
    position = np.searchsorted(distinct, quantiles, side="right")
    raw = np.unique(distinct[position[position < distinct.size]])
    return readable(raw, distinct[0], distinct[-1], dates)


def reference_weights_of_evidence(index: np.ndarray, count: int, label: np.ndarray) -> np.ndarray:
    bads = np.bincount(index, weights=label, minlength=count)
    goods = np.bincount(index, minlength=count) - bads
    odds = goods.sum() / bads.sum()
    return np.log((goods + odds) / (bads + 1.0)) - np.log(odds)


def reference_float_values(column: Any) -> np.ndarray:
    values = np.asarray(pc.cast(column, pa.float64()).to_numpy(), dtype=np.float64)
    finite = np.isfinite(values)
    return values if finite.all() else np.where(finite, values, np.nan)


def reference_convert(feature: Feature, column: Any) -> np.ndarray:
    if feature.type in ("int", "float"):
        return reference_float_values(column)
    if feature.type == "bool":
        return reference_float_values(pc.cast(column, pa.bool_()))
    if feature.type == "date":
        if not pa.types.is_date32(column.type):
            column = pc.cast(column, pa.date32())
        return reference_float_values(pc.cast(column, pa.int32()))
    strings = as_strings(column)
    index = pc.index_in(strings, value_set=pa.array(feature.categories, pa.string()))
    codes = np.array(index.to_numpy(), dtype=np.float64)
    codes[np.isnan(codes)] = len(feature.categories)
    codes[np.asarray(strings.is_null().to_numpy(), dtype=bool)] = np.nan
    return codes


def reference_matrix(encoder: FeatureEncoder, table: pa.Table) -> np.ndarray:
    encoder.check_columns(table)
    out = np.empty((table.num_rows, len(encoder.features)), dtype=np.float64)
    for j, feature in enumerate(encoder.features):
        try:
            out[:, j] = reference_convert(feature, decoded(table.column(feature.name)))
        except ARROW_ERRORS:
            raise ValueError(f"feature {feature.name!r} cannot be read as {feature.type}") from None
    return out


def reference_fit_scorecard(
    encoder: FeatureEncoder, matrix: np.ndarray, label: np.ndarray, params: dict[str, Any]
) -> Scorecard:
    features = encoder.features
    bins = [reference_fit_bins(f, matrix[:, j], params["bins"]) for j, f in enumerate(features)]
    index = np.column_stack([reference_assign(b, matrix[:, j]) for j, b in enumerate(bins)])
    woes = [reference_weights_of_evidence(index[:, j], b.count, label) for j, b in enumerate(bins)]
    rows, counts = distinct_rows(index, [b.count for b in bins], label)
    design = np.column_stack([woe[index[rows, j]] for j, woe in enumerate(woes)])
    regression = LogisticRegression(C=params["C"], max_iter=1000)
    regression.fit(design, label[rows], sample_weight=counts)
    coef = np.asarray(regression.coef_[0], dtype=np.float64)
    intercept = float(regression.intercept_[0])
    scaling = Scaling(params["base_score"], params["base_odds"], params["pdo"])
    characteristics = tuple(
        Characteristic(b, woe, scaling.attribute_points(woe, coef[j], intercept, len(bins)))
        for j, (b, woe) in enumerate(zip(bins, woes, strict=True))
    )
    return Scorecard(encoder, characteristics, coef, intercept, scaling)


def reference_score(card: Scorecard, table: pa.Table, reasons: int) -> tuple[Any, Any, Any]:
    matrix = reference_matrix(card.encoder, table)
    index = np.empty(matrix.shape, dtype=np.intp)
    for j, characteristic in enumerate(card.characteristics):
        index[:, j] = reference_assign(characteristic.bins, matrix[:, j])
    woe = np.empty(index.shape, dtype=np.float64)
    points = np.empty(index.shape, dtype=np.int64)
    for j, characteristic in enumerate(card.characteristics):
        woe[:, j] = characteristic.woe[index[:, j]]
        points[:, j] = characteristic.points[index[:, j]]
    logit = card.intercept + woe @ card.coef
    probability = np.exp(-np.logaddexp(0.0, -logit))
    total = points.sum(axis=1)
    if reasons == 0:
        return probability, total, no_reasons(len(total))
    best = np.array([c.points.max() for c in card.characteristics], dtype=np.int64)
    lost = (best - points).astype(np.float64)
    label_ids = index + card.label_offsets()
    return probability, total, top_reasons(lost, label_ids, card.labels(), reasons)


# --- Comparisons -------------------------------------------------------------------------------


def assert_same_bits(ours: Any, theirs: Any) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape)
    assert ours.tobytes() == theirs.tobytes(), (ours, theirs)


def assert_same_bins(ours: Bins, theirs: Bins) -> None:
    assert ours.feature == theirs.feature
    assert ours.labels == theirs.labels
    assert_same_bits(ours.cuts, theirs.cuts)


def probes(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Values to assign: the training values, each cut and its neighbours, and the odd ones."""
    odd = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324]
    return np.concatenate(
        [values, cuts, np.nextafter(cuts, np.inf), np.nextafter(cuts, -np.inf), odd]
    )


def check_bins(feature: Feature, values: np.ndarray, bins: int) -> Bins | None:
    # Quantiles between infinities (or ±1e308) are NaN (or overflow), with NumPy's warnings; an
    # infinite cut has no label (the encoder reads infinities as missing): the same error.
    with np.errstate(invalid="ignore", over="ignore"):
        try:
            theirs = reference_fit_bins(feature, values, bins)
        except OverflowError as error:
            with pytest.raises(OverflowError, match=str(error)):
                fit_bins(feature, values, bins)
            return None
        ours = fit_bins(feature, values, bins)
    assert_same_bins(ours, theirs)
    probe = probes(values, theirs.cuts)
    assert_same_bits(ours.assign(probe), reference_assign(theirs, probe))
    strided = np.column_stack([probe, probe])[:, 1]  # a matrix column, as templates pass it
    assert_same_bits(ours.assign(strided), reference_assign(theirs, probe))
    return ours


def sample(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """Training values of a kind seen in credit data (or made to be awkward), ~10% missing."""
    if kind == "lognormal amounts":
        values = np.round(np.exp(rng.normal(10, 1.2, n)))
    elif kind == "small counts":
        values = rng.poisson(6, n).astype(float)
    elif kind == "mostly zero":
        values = np.where(rng.random(n) < 0.85, 0, rng.integers(1, 9, n)).astype(float)
    elif kind == "mostly one value":
        values = np.where(rng.random(n) < 0.97, 3, rng.integers(-2, 9, n)).astype(float)
    elif kind == "continuous":
        values = rng.normal(0, 1, n)
    elif kind == "ratios with ties":
        values = np.round(rng.gamma(2, 0.3, n), 2)
    elif kind == "negative and zero":
        values = rng.integers(-4, 3, n).astype(float)
        values[rng.random(n) < 0.2] = -0.0
    elif kind == "wide integers":
        values = rng.integers(-(2**40), 2**40, n).astype(float)
    elif kind == "beyond exact integers":
        values = rng.integers(2**53 - 50, 2**53 + 50, n).astype(float) * rng.choice([1, 4], n)
    elif kind == "huge magnitudes":
        values = rng.choice([-1e308, -1e300, -1.0, 0.0, 1.0, 1e300, 1e308], n)
    elif kind == "infinities":
        values = rng.choice([-np.inf, -1.0, 0.0, 2.5, np.inf], n)
    elif kind == "tiny and integers":
        values = rng.choice([-1.0, 0.0, 1e-300, 1.0, 2.0], n)
    elif kind == "halves":
        values = rng.integers(0, 20, n) / 2
    elif kind == "days":
        values = rng.integers(-3000, 20_000, n).astype(float)
    elif kind == "two values":
        values = rng.choice([1.0, 7.0], n, p=[0.9, 0.1])
    elif kind == "constant":
        values = np.full(n, 42.0)
    else:
        raise AssertionError(kind)
    values[rng.random(n) < 0.1] = np.nan
    return values


KINDS = (
    "lognormal amounts", "small counts", "mostly zero", "mostly one value", "continuous",
    "ratios with ties", "negative and zero", "wide integers", "beyond exact integers",
    "huge magnitudes", "infinities", "tiny and integers", "halves", "days", "two values",
    "constant",
)


# --- Binning -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bins", [2, 5, 10, 50])
def test_bins_match_the_reference_on_typical_and_awkward_columns(kind, bins):
    rng = np.random.default_rng([bins, KINDS.index(kind)])
    for n in (1, 2, 7, 100, 5000, 60_000):
        values = sample(rng, kind, n)
        check_bins(Feature("x", "date" if kind == "days" else "int"), values, bins)
        check_bins(Feature("x", "float"), values, bins)


def test_all_missing_and_empty_columns_have_no_cuts():
    for values in (np.full(50, np.nan), np.empty(0)):
        bins = check_bins(Feature("x", "float"), values, 5)
        assert bins is not None and bins.labels == ("any value", MISSING)


@pytest.mark.parametrize("many", [1, 40, 2000])
def test_zeros_of_both_signs_and_the_tiniest_floats(many):
    for values in (
        [-0.0, 0.0, 5e-324], [0.0, -0.0, 5e-324], [-5e-324, -0.0, 0.0], [-0.0, 0.0, 1.0, 2.0],
        [-1.0, -0.0, 0.0, 0.0], [0.0, -0.0], [-2.0, -0.0, -0.0, 3.0, 0.0, 4.0],
    ):
        present = np.tile(values, many)
        for order in (1, -1):
            present = present[::order].copy()
            for bins in (2, 3, 5, 50):
                check_bins(Feature("x", "float"), present, bins)


number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-6, 6).map(float),
    st.sampled_from([0.0, -0.0, 0.5, 1e-300, 2.0**53, 2.0**53 + 2, -(2.0**53), 1e308, -1e308]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(number, max_size=120), st.integers(2, 50), st.sampled_from(["int", "date"]))
def test_bins_match_the_reference_on_generated_columns(values, bins, kind):
    values = np.array(values, dtype=np.float64)
    if kind == "date":  # days since 1970: whole numbers within numpy's datetime range
        values = np.where(np.isfinite(values), np.clip(np.round(values), -1e6, 1e6), np.nan)
    check_bins(Feature("x", kind), values, bins)


@pytest.mark.parametrize("categories", [0, 1, 2, 9, 10, 40, 250])
def test_categorical_bins_match_the_reference(categories):
    """Few codes are compared like cuts, many clipped as before; odd codes land alike."""
    codes = np.concatenate([
        np.arange(categories + 1), np.arange(categories + 1) + 0.5, [np.nan, categories + 1, 300],
        [-1, -0.5, np.inf, -np.inf, -0.0, 2.9999, 5e-324],
    ])
    names = tuple(f"c{i}" for i in range(categories))
    features = [Feature("s", "string", names)] + [Feature("b", "bool")] * (categories == 0)
    for feature in features:
        ours, theirs = fit_bins(feature, codes, 5), reference_fit_bins(feature, codes, 5)
        assert_same_bins(ours, theirs)
        assert_same_bits(ours.assign(codes), reference_assign(theirs, codes))
        assert_same_bits(ours.assign_narrow(codes).astype(np.intp), reference_assign(theirs, codes))


@pytest.mark.parametrize("cuts", [1, 40, 126, 127, 300])
def test_many_cuts_assign_like_the_reference(cuts):
    """Up to 126 cuts (128 bins) are compared one by one, in bytes; more searched, as before."""
    rng = np.random.default_rng(cuts)
    edges = np.unique(rng.normal(size=cuts))
    bins = Bins(Feature("x", "float"), edges, (*interval_labels(edges, False), MISSING))
    values = probes(rng.normal(size=10_000), edges)
    assert_same_bits(bins.assign(values), reference_assign(bins, values))
    narrow = bins.assign_narrow(values)
    assert narrow.dtype == (np.int8 if bins.count <= 128 else np.intp)
    assert_same_bits(narrow.astype(np.intp), reference_assign(bins, values))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False), st.integers(-5, 5).map(float),
                          st.integers(0, 40).map(float)), max_size=200))
def test_distinct_values_are_numpys(values):
    present = np.array(values, dtype=np.float64)
    assert_same_bits(distinct_values(present), np.unique(present))


def test_weighted_woe_is_the_woe_of_every_row():
    rng = np.random.default_rng(3)
    index = rng.integers(0, 7, 20_000)
    index[index == 4] = 3  # an empty bin
    label = (rng.random(20_000) < 0.1).astype(np.int8)
    rows, counts = distinct_rows(index[:, None], [7], label)
    expected = reference_weights_of_evidence(index, 7, label)
    assert_same_bits(weights_of_evidence(index, 7, label), expected)
    assert_same_bits(weights_of_evidence(index[rows], 7, label[rows], counts), expected)


# --- Reading features --------------------------------------------------------------------------


def awkward_table() -> pa.Table:
    rng = np.random.default_rng(11)
    n = 3000
    amounts = np.round(np.exp(rng.normal(9, 1, n))).astype(np.int64)
    floats = rng.normal(size=n)
    floats[::97] = np.inf
    floats[5::89] = -np.inf
    floats[7::31] = -0.0
    days = rng.integers(0, 20_000, n)
    words = rng.choice(["retail", "farming", "mining", "rare", "OTHER"], n, p=[.5, .3, .18, .01, .01])
    null = rng.random(n) < 0.1
    return pa.table({
        "amount": pa.chunked_array([
            pa.array(amounts[:1000], pa.int64(), mask=null[:1000]),
            pa.array(amounts[1000:], pa.int64(), mask=null[1000:]),
        ]),
        "amount32": pa.array(amounts, pa.int32(), mask=null),
        "unsigned": pa.array(amounts % 60_000, pa.uint16()),
        "ratio": pa.array(floats, pa.float64(), mask=null),
        "ratio32": pa.array(floats, pa.float32()),
        "nan_not_null": pa.array(np.where(null, np.nan, floats)),
        "money": pa.array([decimal.Decimal(int(a)) / 100 for a in amounts], pa.decimal128(12, 2)),
        "flag": pa.array(amounts % 3 == 0, pa.bool_(), mask=null),
        "flag_int": pa.array((amounts % 2).astype(np.int8)),
        "founded": pa.array(days.astype("datetime64[D]"), pa.date32(), mask=null),
        "stamp": pa.array(days.astype("datetime64[D]").astype("datetime64[us]"), pa.timestamp("us")),
        "day_text": pa.array([str(d) for d in days.astype("datetime64[D]")]),
        "industry": pa.array(words, mask=null).dictionary_encode(),
        "industry_plain": pa.array(words),
        "region": pa.array(rng.integers(0, 30, n).astype(str)),  # more codes than are compared
        "code": pa.array(amounts % 7, pa.int64()),
        "nothing": pa.nulls(n),
        "constant": pa.array(np.full(n, 5, np.int64)),
        "slice": pa.array(np.arange(n + 10, dtype=np.int64), mask=np.arange(n + 10) % 5 == 0)[10:],
    })


DECLARED = {"flag_int": "bool", "day_text": "date", "code": "string", "stamp": "date"}


def test_the_matrix_matches_the_reference_on_every_type():
    table = awkward_table()
    encoder = FeatureEncoder.fit(table, DECLARED)
    expected = reference_matrix(encoder, table)
    assert_same_bits(encoder.matrix(table), expected)
    for j, column in enumerate(encoder.columns(table)):
        assert_same_bits(column, expected[:, j])
    empty = table.slice(0, 0)
    assert_same_bits(encoder.matrix(empty), reference_matrix(encoder, empty))


def test_unreadable_columns_fail_as_before():
    for table, declared in [
        (pa.table({"x": pa.array([1, 2**53 + 1], pa.int64())}), {}),  # no float64 holds it
        (pa.table({"x": pa.array([1, 2**63], pa.uint64())}), {}),
        (pa.table({"x": ["12", "secret"]}), {"x": "int"}),
        (pa.table({"x": ["2020-01-01", "not a day"]}), {"x": "date"}),
    ]:
        encoder = FeatureEncoder.fit(table, declared)
        with pytest.raises(ValueError) as ours:
            encoder.matrix(table)
        with pytest.raises(ValueError) as theirs:
            reference_matrix(encoder, table)
        assert str(ours.value) == str(theirs.value)


# --- The whole template ------------------------------------------------------------------------


def assert_same_card(ours: Scorecard, theirs: Scorecard) -> None:
    assert ours.encoder == theirs.encoder
    assert_same_bits(ours.coef, theirs.coef)
    assert_same_bits(ours.intercept, theirs.intercept)
    assert ours.scaling == theirs.scaling
    for a, b in zip(ours.characteristics, theirs.characteristics, strict=True):
        assert_same_bins(a.bins, b.bins)
        assert_same_bits(a.woe, b.woe)
        assert_same_bits(a.points, b.points)


def check_training(train_table: pa.Table, test_table: pa.Table, job: dict[str, Any]) -> None:
    checked = read_training_job(job)
    trained = train(train_table, test_table, checked)
    label = read_label(train_table)
    features = train_table.drop_columns([LABEL])
    encoder = FeatureEncoder.fit(features, checked.feature_types)
    reference = reference_fit_scorecard(
        encoder, reference_matrix(encoder, features), label, checked.params
    )
    assert_same_card(trained.model, reference)
    assert_same_bits(trained.test_scores, reference_score(reference, test_table, 0)[0])
    for reasons in (0, 3):
        ours = trained.model.score(test_table, reasons)
        probability, points, codes = reference_score(reference, test_table, reasons)
        assert_same_bits(ours.probability, probability)
        assert_same_bits(ours.points, points)
        assert ours.reasons.equals(codes)


@pytest.mark.parametrize("params", [{}, {"bins": 2}, {"bins": 10, "C": 0.05}, {"bins": 50}])
def test_training_on_the_synthetic_book_matches_the_reference(split, params):
    job = {"template": "logistic_scorecard", "params": params, "feature_types": FEATURE_TYPES}
    check_training(split.train, split.test, job)


@pytest.mark.parametrize("params", [{}, {"bins": 3}, {"bins": 20, "C": 10.0}])
def test_training_on_awkward_columns_matches_the_reference(params):
    table = awkward_table()
    rng = np.random.default_rng(2)
    label = pa.array((rng.random(table.num_rows) < 0.15).astype(np.int8))
    train_table = table.slice(0, 2000).append_column(LABEL, label[:2000])
    job = {"template": "logistic_scorecard", "params": params, "feature_types": DECLARED}
    check_training(train_table, table.slice(2000), job)


def test_a_later_day_scores_like_the_reference():
    """Scoring after training: new categories, unseen values beyond every cut, all missing."""
    base = dt.date(2001, 1, 1)
    rng = np.random.default_rng(8)
    n = 4000
    train_table = pa.table({
        "amount": pa.array(rng.integers(0, 50, n), pa.int64()),
        "industry": pa.array(rng.choice(["a", "b", "c"], n)),
        "founded": pa.array([base + dt.timedelta(days=int(d)) for d in rng.integers(0, 9000, n)]),
        "flag": pa.array(rng.random(n) < 0.3),
        LABEL: pa.array((rng.random(n) < 0.2).astype(np.int8)),
    })
    later = pa.table({
        "flag": pa.array([None, True, False, None], pa.bool_()),
        "founded": pa.array([None, base, base + dt.timedelta(days=20_000), base], pa.date32()),
        "amount": pa.array([None, -5, 10**9, 25], pa.int64()),
        "industry": pa.array(["z", None, "a", "c"]),
    })
    check_training(train_table, later, {"template": "logistic_scorecard"})
