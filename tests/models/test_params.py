"""Job, template and scoring parameters: defaults filled, anything unknown or out of range refused
with a ValueError that names the parameter.
"""

from __future__ import annotations

import pytest

from models import entry
from models.params import read_reason_count, read_training_job, template_params
from tests.models.conftest import FEATURE_TYPES, job


def test_defaults_are_filled_and_given_values_kept():
    params = template_params("logistic_scorecard", {"bins": 10, "C": 2})
    assert params == {"bins": 10, "C": 2.0, "base_score": 600.0, "base_odds": 50.0, "pdo": 20.0}
    assert isinstance(params["C"], float)
    boosting = template_params("gradient_boosting", {"max_depth": None, "early_stopping": False})
    assert boosting["max_depth"] is None and boosting["early_stopping"] is False


@pytest.mark.parametrize(
    ("template", "params", "message"),
    [
        ("logistic_scorecard", {"binz": 5}, "unknown logistic_scorecard parameter 'binz'"),
        ("gradient_boosting", {"n_estimators": 5}, "unknown gradient_boosting parameter"),
        ("logistic_scorecard", {"bins": 1}, r"'bins' must be in \[2, 50\], got 1"),
        ("logistic_scorecard", {"bins": 5.0}, "'bins' must be an integer"),
        ("logistic_scorecard", {"bins": "5"}, "'bins' must be an integer"),
        ("logistic_scorecard", {"bins": True}, "'bins' must be an integer"),
        ("logistic_scorecard", {"C": 0}, r"'C' must be in \(0, inf\)"),
        ("logistic_scorecard", {"C": float("nan")}, "'C' must be finite"),
        ("logistic_scorecard", {"pdo": -20}, "'pdo' must be in"),
        ("logistic_scorecard", {"base_odds": 0}, "'base_odds' must be in"),
        ("logistic_scorecard", {"base_score": None}, "'base_score' must be a number"),
        ("gradient_boosting", {"learning_rate": 1.5}, r"'learning_rate' must be in \(0, 1\]"),
        ("gradient_boosting", {"learning_rate": True}, "'learning_rate' must be a number"),
        ("gradient_boosting", {"early_stopping": 1}, "'early_stopping' must be true or false"),
        ("gradient_boosting", {"validation_fraction": 1}, r"must be in \(0, 1\)"),
        ("gradient_boosting", {"max_iter": 0}, "'max_iter' must be in"),
        ("gradient_boosting", {"max_leaf_nodes": None}, "'max_leaf_nodes' must be an integer"),
    ],
)
def test_bad_template_params_are_named(template, params, message):
    with pytest.raises(ValueError, match=message):
        template_params(template, params)


def test_custom_params_pass_through_untouched():
    given = {"anything": [1, {"x": "y"}], "C": "not checked here"}
    assert template_params("custom", given) == given


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"template": "random_forest"}, "template must be one of"),
        ({"template": None}, "template must be one of"),
        ({"seed": -1}, "seed must be an integer"),
        ({"seed": 2**32}, "seed must be an integer"),
        ({"seed": 1.0}, "seed must be an integer"),
        ({"seed": True}, "seed must be an integer"),
        ({"params": [1]}, "params must be an object"),
        ({"feature_types": {"x": "datetime"}}, r"feature_types\['x'\] must be one of"),
        ({"feature_types": ["int"]}, "feature_types must map"),
        ({"purpose": "credit"}, "unknown job parameter 'purpose'"),
    ],
)
def test_bad_job_params_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        read_training_job({**job("logistic_scorecard"), **changes})


def test_a_training_job_reads_back():
    checked = read_training_job(job("gradient_boosting", seed=9, learning_rate=0.2))
    assert checked.template == "gradient_boosting"
    assert checked.seed == 9
    assert checked.params["learning_rate"] == 0.2
    assert checked.feature_types == FEATURE_TYPES
    assert read_training_job({"template": "custom"}).seed == 0


def test_the_entry_refuses_bad_params_before_reading_data(split):
    inputs = {"train": split.train, "test": split.test}
    with pytest.raises(ValueError, match="unknown gradient_boosting parameter 'depth'"):
        entry.train(inputs, job("gradient_boosting", depth=3), {})
    with pytest.raises(ValueError, match="inputs must be exactly"):
        entry.train({"train": split.train}, job("gradient_boosting"), {})


def test_reason_count():
    assert read_reason_count({}) == 3
    assert read_reason_count({"reasons": 0}) == 0
    for bad in (-1, 21, 2.0, "3", None, True):
        with pytest.raises(ValueError, match="reasons must be an integer"):
            read_reason_count({"reasons": bad})
