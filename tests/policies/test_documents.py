"""The dataset policy document: the api.md shape, defaults, and errors that name the path."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.documents import DatasetPolicy, PolicyDocumentError, parse_policy
from tests.policies.worlds import API_EXAMPLE, COLUMNS


def issue_paths(document: Any) -> list[str]:
    with pytest.raises(PolicyDocumentError) as caught:
        parse_policy(document, COLUMNS)
    return [issue.path for issue in caught.value.issues]


def test_the_api_example_parses_and_round_trips_as_json_numbers():
    policy = parse_policy(API_EXAMPLE, COLUMNS)
    assert policy.aggregate is not None
    assert policy.aggregate.epsilon_per_period == Decimal("3.0")
    dumped = policy.model_dump(mode="json", exclude_defaults=False)
    assert dumped["aggregate"]["epsilon_per_period"] == 3.0
    assert parse_policy(dumped, COLUMNS) == policy


def test_defaults():
    policy = DatasetPolicy.model_validate({
        "aggregate": {"purposes": ["r"], "functions": ["count"], "epsilon_per_period": 1},
        "verify": {"purposes": ["v"], "fields": {"annual_tax": ["="]}},
        "model": {"purposes": ["m"]},
    })
    assert policy.aggregate is not None
    assert (policy.aggregate.min_group_size, policy.aggregate.period) == (10, "month")
    assert policy.verify is not None
    assert policy.verify.consent_required is True
    assert policy.verify.max_distinct_values_per_consent == 3
    assert policy.model is not None
    assert policy.model.custom_code_requires_review is True
    assert policy.model.scoring_consent_required is True
    assert policy.model.max_scores_per_subject_per_day == 3
    assert (policy.consent_notice, policy.max_consent_days) == (None, 365)


def test_an_empty_document_forbids_every_use():
    policy = DatasetPolicy.model_validate({})
    assert (policy.aggregate, policy.verify, policy.model) == (None, None, None)
    assert policy.consent_purposes() == frozenset()


def test_epsilon_one_tenth_is_exact():
    document = copy.deepcopy(API_EXAMPLE)
    document["aggregate"]["epsilon_per_period"] = 0.1
    policy = parse_policy(document, COLUMNS)
    assert policy.aggregate is not None
    assert policy.aggregate.epsilon_per_period == Decimal("0.1")


@pytest.mark.parametrize(("section", "key", "value", "path"), [
    ("aggregate", "functions", ["count", "median"], "aggregate.functions.1"),
    ("aggregate", "functions", [], "aggregate.functions"),
    ("aggregate", "min_group_size", 0, "aggregate.min_group_size"),
    ("aggregate", "min_group_size", "10", "aggregate.min_group_size"),
    ("aggregate", "epsilon_per_period", 0, "aggregate.epsilon_per_period"),
    ("aggregate", "epsilon_per_period", -1.5, "aggregate.epsilon_per_period"),
    ("aggregate", "epsilon_per_period", "3.0", "aggregate.epsilon_per_period"),
    ("aggregate", "epsilon_per_period", True, "aggregate.epsilon_per_period"),
    ("aggregate", "period", "fortnight", "aggregate.period"),
    ("aggregate", "purposes", [], "aggregate.purposes"),
    ("aggregate", "purposes", ["a", "a"], "aggregate.purposes"),
    ("aggregate", "purposes", ["Credit Research"], "aggregate.purposes.0"),
    ("verify", "consent_required", "yes", "verify.consent_required"),
    ("verify", "consent_required", 1, "verify.consent_required"),
    ("verify", "fields", {"annual_tax": ["~"]}, "verify.fields.annual_tax.0"),
    ("verify", "fields", {"annual_tax": []}, "verify.fields.annual_tax"),
    ("verify", "fields", {}, "verify.fields"),
    ("verify", "max_distinct_values_per_consent", 0, "verify.max_distinct_values_per_consent"),
    ("model", "min_training_rows", 0, "model.min_training_rows"),
    ("model", "scoring_consent_required", None, "model.scoring_consent_required"),
    ("model", "max_scores_per_subject_per_day", 0, "model.max_scores_per_subject_per_day"),
    ("model", "unknown_key", 1, "model.unknown_key"),
])
def test_a_bad_value_is_reported_at_its_path(section, key, value, path):
    document = copy.deepcopy(API_EXAMPLE)
    document[section][key] = value
    assert path in issue_paths(document)


@pytest.mark.parametrize(("document", "path"), [
    ({"filter": {}}, "filter"),
    ({"max_consent_days": 0}, "max_consent_days"),
    ({"max_consent_days": 3651}, "max_consent_days"),
    ({"consent_notice": ""}, "consent_notice"),
    ({"verify": None, "model": "yes"}, "model"),
    ([], "document"),
])
def test_top_level_errors_are_named(document, path):
    assert path in issue_paths(document)


def test_schema_check_names_unknown_and_key_fields():
    document = copy.deepcopy(API_EXAMPLE)
    document["verify"]["fields"] = {"annual_tax": ["="], "turnover": ["="], "uscc": ["="]}
    assert issue_paths(document) == ["verify.fields.turnover", "verify.fields.uscc"]


@pytest.mark.parametrize("field", ["tax_arrears", "region"])
def test_ordering_operators_need_an_ordered_column(field):
    document = copy.deepcopy(API_EXAMPLE)
    document["verify"]["fields"] = {field: ["=", ">"]}
    with pytest.raises(PolicyDocumentError) as caught:
        parse_policy(document, COLUMNS)
    (issue,) = caught.value.issues
    assert issue.path == f"verify.fields.{field}"
    assert ">" in issue.message


def test_error_text_carries_paths_but_not_values():
    document = copy.deepcopy(API_EXAMPLE)
    document["aggregate"]["period"] = "SECRET_VALUE"
    with pytest.raises(PolicyDocumentError) as caught:
        parse_policy(document, COLUMNS)
    assert "aggregate.period" in str(caught.value)
    assert "SECRET_VALUE" not in str(caught.value)


# Every leaf of the example, and where a wrong-typed value there must be reported.
LEAVES = [
    (section, key) for section, body in API_EXAMPLE.items() for key in body
]


@given(leaf=st.sampled_from(LEAVES), junk=st.sampled_from([None, "x", [1], {"k": 1}, -7]))
def test_property_any_wrong_leaf_is_named(leaf, junk):
    section, key = leaf
    document = copy.deepcopy(API_EXAMPLE)
    document[section][key] = junk
    # Every junk value above is invalid at every leaf of the example.
    assert all(path.startswith(f"{section}.{key}") for path in issue_paths(document))


@given(section=st.sampled_from(["aggregate", "verify", "model", None]),
       key=st.from_regex(r"\A[a-z_]{1,12}\Z"))
def test_property_unknown_keys_are_refused_at_their_path(section, key):
    document = copy.deepcopy(API_EXAMPLE)
    target = document if section is None else document[section]
    if key in target or (section is None and key in DatasetPolicy.model_fields):
        return
    target[key] = 1
    path = key if section is None else f"{section}.{key}"
    assert issue_paths(document) == [path]
