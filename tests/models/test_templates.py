"""The two templates end to end, in process: quality, scorecard scaling, reason codes, artifacts
that round-trip through the scorer, the scores schema and determinism for a seed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from models import entry
from models.scaling import Scaling
from tests.models.conftest import FEATURE_TYPES, TEMPLATES, applicant, train


def score_column(result: dict[str, Any]) -> np.ndarray:
    table = result["tables"]["test_scores"]
    assert table.schema == pa.schema([("score", pa.float64())])
    return np.asarray(table.column("score").to_numpy())


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_ranks_defaulters_well_on_held_out_rows(trained, split, template):
    scores = score_column(trained[template])
    assert len(scores) == split.test.num_rows
    assert np.all((scores >= 0) & (scores <= 1))
    assert roc_auc_score(split.test_label, scores) > 0.7


@pytest.mark.parametrize("template", TEMPLATES)
def test_values_report_the_job_with_defaults_filled(trained, split, template):
    values = trained[template]["values"]
    assert values["template"] == template
    assert values["n_train"] == split.train.num_rows
    assert values["features"] == list(FEATURE_TYPES)
    expected = {
        "logistic_scorecard": {"bins": 5, "C": 1.0, "base_score": 600.0, "base_odds": 50.0,
                               "pdo": 20.0},
        "gradient_boosting": {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 8,
                              "max_depth": 3, "min_samples_leaf": 20,
                              "l2_regularization": 0.0, "early_stopping": True,
                              "validation_fraction": 0.1, "n_iter_no_change": 10},
    }
    assert values["params"] == expected[template]
    assert set(trained[template]["blobs"]) == {"model"}


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_artifact_round_trips_through_the_scorer(trained, split, template):
    handler = entry.scorer(trained[template]["blobs"])
    out = handler({"features": split.test}, {})
    assert set(out) == {"tables"} and set(out["tables"]) == {"scores"}
    scores = out["tables"]["scores"]
    assert scores.schema == pa.schema(
        [("probability", pa.float64()), ("points", pa.int64()), ("reasons", pa.list_(pa.string()))]
    )
    np.testing.assert_array_equal(
        scores.column("probability").to_numpy(), score_column(trained[template])
    )
    assert all(len(r) <= 3 for r in scores.column("reasons").to_pylist())
    cold = entry.score({"features": split.test.slice(0, 50)}, {}, trained[template]["blobs"])
    assert cold["tables"]["scores"].equals(scores.slice(0, 50))


def test_scorecard_points_are_integers_on_the_stated_scale(trained, split):
    scores = entry.scorer(trained["logistic_scorecard"]["blobs"])({"features": split.test}, {})
    table = scores["tables"]["scores"]
    assert table.column("points").null_count == 0
    points = table.column("points").to_numpy()
    p = table.column("probability").to_numpy()
    # 600 points at odds 50:1 (good:bad), 20 more for each doubling; each of the characteristics'
    # points is rounded, so the total is within half a point per characteristic.
    expected = 600 + 20 * np.log2((1 - p) / p / 50)
    assert np.abs(points - expected).max() <= 0.5 * len(FEATURE_TYPES)
    assert points.min() < 600 < points.max()


def test_scorecard_scale_follows_its_params(split):
    result = train(split, "logistic_scorecard", base_score=500, base_odds=20, pdo=40, bins=8)
    assert result["values"]["params"]["bins"] == 8
    table = entry.scorer(result["blobs"])({"features": split.test}, {})["tables"]["scores"]
    points = table.column("points").to_numpy()
    p = table.column("probability").to_numpy()
    expected = 500 + 40 * np.log2((1 - p) / p / 20)
    assert np.abs(points - expected).max() <= 0.5 * len(FEATURE_TYPES)


def test_scaling_formula():
    scaling = Scaling(base_score=600, base_odds=50, pdo=20)
    assert scaling.factor == pytest.approx(20 / math.log(2))
    assert scaling.offset + scaling.factor * math.log(50) == pytest.approx(600)
    assert scaling.offset + scaling.factor * math.log(100) == pytest.approx(620)
    # Attribute points over n characteristics add up to the scaled log-odds.
    woe = np.array([0.7, -0.3, 0.0])
    coef, intercept = -0.8, -2.5
    per_characteristic = -(woe * coef + intercept / 3) * scaling.factor + scaling.offset / 3
    total = scaling.offset - scaling.factor * (intercept + coef * woe.sum())
    assert per_characteristic.sum() == pytest.approx(total)
    assert scaling.attribute_points(woe, coef, intercept, 3).tolist() == np.rint(
        per_characteristic
    ).tolist()


def test_gradient_boosting_has_no_points(trained, split):
    table = entry.score({"features": split.test.slice(0, 20)}, {},
                        trained["gradient_boosting"]["blobs"])["tables"]["scores"]
    assert table.column("points").null_count == 20


@pytest.mark.parametrize("template", TEMPLATES)
def test_court_judgments_and_tax_arrears_are_the_reasons(trained, split, template):
    handler = entry.scorer(trained[template]["blobs"])
    clean = applicant(split)
    risky = applicant(split, **{"court_records.judgments": 3, "tax_annual.tax_arrears": True})
    scored = handler({"features": pa.concat_tables([clean, risky])}, {"reasons": 3})
    table = scored["tables"]["scores"]
    p_clean, p_risky = table.column("probability").to_pylist()
    assert p_risky > p_clean
    reasons = table.column("reasons").to_pylist()[1]
    features = [reason.split(":")[0] for reason in reasons]
    assert {"court_records.judgments", "tax_annual.tax_arrears"} <= set(features[:3])
    if template == "logistic_scorecard":
        assert "tax_annual.tax_arrears: true" in reasons
        assert any(r.startswith("court_records.judgments: [") for r in reasons)
        clean_reasons = table.column("reasons").to_pylist()[0]
        assert not any(r.startswith(("court_records.", "tax_annual.tax_arrears")) for r in
                       clean_reasons)
    else:
        assert set(reasons) <= set(FEATURE_TYPES)


def test_scorecard_reason_texts_are_bin_labels_never_values(trained, split):
    table = entry.scorer(trained["logistic_scorecard"]["blobs"])(
        {"features": split.test}, {"reasons": 5}
    )["tables"]["scores"]
    texts = {r for reasons in table.column("reasons").to_pylist() for r in reasons}
    for text in texts:
        name, _, label = text.partition(": ")
        assert name in FEATURE_TYPES
        assert label == "missing" or label in ("true", "false") or label.startswith(
            ("<", ">=", "[")
        ) or name == "market_registry.industry"
    # Numeric cut points are rounded to a few significant figures.
    tax = {t for t in texts if t.startswith("tax_annual.annual_tax: [")}
    assert tax
    for text in tax:
        low = text.split("[")[1].split(",")[0]
        assert len(low.rstrip("0")) <= 3


@pytest.mark.parametrize("template", TEMPLATES)
def test_reason_count_is_a_parameter(trained, split, template):
    handler = entry.scorer(trained[template]["blobs"])
    batch = {"features": split.test.slice(0, 200)}
    none = handler(batch, {"reasons": 0})["tables"]["scores"]
    assert all(r == [] for r in none.column("reasons").to_pylist())
    one = handler(batch, {"reasons": 1})["tables"]["scores"]
    assert all(len(r) <= 1 for r in one.column("reasons").to_pylist())
    three = handler(batch, {})["tables"]["scores"]
    assert [r[:1] for r in three.column("reasons").to_pylist()] == one.column(
        "reasons"
    ).to_pylist()
    np.testing.assert_array_equal(none.column("probability"), three.column("probability"))
    with pytest.raises(ValueError, match="reasons must be an integer"):
        handler(batch, {"reasons": -1})
    with pytest.raises(ValueError, match="unknown scoring parameter 'top'"):
        handler(batch, {"top": 3})


@pytest.mark.parametrize("template", TEMPLATES)
def test_scoring_edge_batches(trained, split, template):
    handler = entry.scorer(trained[template]["blobs"])
    empty = handler({"features": split.test.slice(0, 0)}, {})["tables"]["scores"]
    assert empty.num_rows == 0
    shuffled = split.test.select(list(reversed(split.test.column_names)))
    same = handler({"features": shuffled.slice(0, 10)}, {})["tables"]["scores"]
    assert same.equals(handler({"features": split.test.slice(0, 10)}, {})["tables"]["scores"])
    with pytest.raises(ValueError, match=r"missing feature columns: \['utilities.overdue_months'\]"):
        handler({"features": split.test.drop_columns(["utilities.overdue_months"])}, {})
    with pytest.raises(ValueError, match="unexpected columns"):
        handler({"features": split.test.append_column("x", pa.array([1] * split.test.num_rows))},
                {})
    with pytest.raises(ValueError, match="inputs must be exactly"):
        handler({"applicants": split.test}, {})


@pytest.mark.parametrize("template", TEMPLATES)
def test_unseen_categories_and_missing_values_still_score(trained, split, template):
    handler = entry.scorer(trained[template]["blobs"])
    odd = applicant(split, **{"market_registry.industry": "航天业", "tax_annual.annual_tax": None,
                              "market_registry.founded": None})
    table = handler({"features": odd}, {"reasons": 20})["tables"]["scores"]
    assert 0 < table.column("probability")[0].as_py() < 1
    if template == "logistic_scorecard":
        reasons = table.column("reasons")[0].as_py()
        assert reasons  # a card explains every score
        assert "market_registry.industry: 航天业" not in reasons  # only the card's own labels
        assert all(r.split(": ")[1] != "航天业" for r in reasons)


@pytest.mark.parametrize("template", TEMPLATES)
def test_same_seed_same_model(trained, split, template):
    again = train(split, template)
    np.testing.assert_array_equal(score_column(again), score_column(trained[template]))
    batch = {"features": split.test.slice(0, 300)}
    first = entry.scorer(trained[template]["blobs"])(batch, {})["tables"]["scores"]
    second = entry.scorer(again["blobs"])(batch, {})["tables"]["scores"]
    assert first.equals(second)


def test_another_seed_another_boosting_model(trained, split):
    other = train(split, "gradient_boosting", seed=2)
    assert not np.array_equal(score_column(other), score_column(trained["gradient_boosting"]))


def test_a_foreign_blob_is_not_a_model():
    with pytest.raises(ValueError, match="blob 'model'"):
        entry.scorer({})
    with pytest.raises(ValueError, match="not a model artifact"):
        entry.scorer({"model": b"\x80\x05junk"})
