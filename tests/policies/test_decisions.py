"""One decision per use: each allow and each denial code, on hand-built facts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from policies.decisions import (
    Decision,
    decide_aggregate,
    decide_score_request,
    decide_score_subject,
    decide_self_query,
    decide_train,
    decide_training_size,
    decide_verify_check,
    decide_verify_request,
)
from policies.documents import DatasetPolicy, parse_policy
from policies.errors import PolicyDenied
from policies.facts import Actor
from tests.policies.worlds import (
    API_EXAMPLE,
    BANK,
    COLUMNS,
    MICRO,
    NOW,
    SUBJECTS,
    agreement,
    consent,
    open_policy,
)

SUBJECT = SUBJECTS[0]
TAX = parse_policy(API_EXAMPLE, COLUMNS)
# A dataset the bank may score with, no consent needed (e.g. public court judgments).
COURT = DatasetPolicy.model_validate(
    {"model": {"purposes": ["credit_modeling"], "scoring_consent_required": False}})


def denied(decision: Decision, code: str) -> bool:
    return not decision.allowed and decision.code == code


# --- Decision ---------------------------------------------------------------------------------

def test_decision_invariants_and_raise():
    Decision.allow().raise_if_denied()
    with pytest.raises(PolicyDenied) as caught:
        Decision.deny("no_agreement", "why").raise_if_denied()
    assert (caught.value.code, caught.value.reason) == ("no_agreement", "why")
    with pytest.raises(ValueError, match="code"):
        Decision(True, "no_agreement", "contradiction")
    with pytest.raises(ValueError, match="code"):
        Decision(False, None, "contradiction")
    assert Decision.allow(consent_ids=["b", "a", "b"]).consent_ids == ("a", "b")


# --- aggregate --------------------------------------------------------------------------------

def aggregate(**overrides: Any) -> Decision:
    facts = {"actor": BANK, "datasets": {"tax": TAX}, "agreements": [agreement()],
             "purpose": "credit_research", "functions": {"count", "sum"}, "now": NOW}
    return decide_aggregate(**{**facts, **overrides})


def test_aggregate_allowed_names_the_agreement():
    decision = aggregate()
    assert decision.allowed
    assert decision.agreement_ids == ("agr_1",)


@pytest.mark.parametrize(("overrides", "code"), [
    ({"actor": Actor("dep_1", "department")}, "role_not_allowed"),
    ({"actor": Actor("e", "enterprise", SUBJECT)}, "role_not_allowed"),
    ({"agreements": []}, "no_agreement"),
    ({"agreements": [agreement("bank_b")]}, "no_agreement"),
    ({"agreements": [agreement(datasets=("court",))]}, "no_agreement"),
    ({"agreements": [agreement(valid_until=NOW)]}, "no_agreement"),
    ({"agreements": [agreement(ended_at=NOW - MICRO)]}, "no_agreement"),
    ({"agreements": [agreement(purposes=("loan_application",))]}, "purpose_not_allowed"),
    ({"purpose": "loan_application"}, "purpose_not_allowed"),
    ({"datasets": {"tax": None}}, "query_not_allowed"),
    ({"datasets": {"tax": open_policy(frozenset({"verify"}))}}, "query_not_allowed"),
    ({"datasets": {}}, "query_not_allowed"),
    ({"functions": set()}, "query_not_allowed"),
    ({"functions": {"count", "max"}}, "function_not_allowed"),
])
def test_aggregate_denials(overrides, code):
    assert denied(aggregate(**overrides), code)


def test_aggregate_needs_every_dataset_covered():
    both = {"tax": TAX, "social": open_policy()}
    assert denied(aggregate(datasets=both, agreements=[agreement(datasets=("tax",))]),
                  "no_agreement")
    split = [agreement(datasets=("tax",), id="a1"), agreement(datasets=("social",), id="a2")]
    assert aggregate(datasets=both, agreements=split).agreement_ids == ("a1", "a2")


def test_own_private_dataset_needs_no_agreement_but_keeps_its_policy():
    labels = {"bank_a_labels": open_policy()}
    assert aggregate(datasets=labels, agreements=[], own_datasets={"bank_a_labels"}).allowed
    assert denied(aggregate(datasets={"bank_a_labels": None}, agreements=[],
                            own_datasets={"bank_a_labels"}), "query_not_allowed")
    assert denied(aggregate(datasets=labels, agreements=[]), "no_agreement")


# --- verify -----------------------------------------------------------------------------------

def test_verify_request():
    facts: dict[str, Any] = {"datasets": {"tax": TAX}, "agreements": [agreement()], "now": NOW}
    assert decide_verify_request(BANK, purpose="loan_application", **facts).allowed
    assert denied(decide_verify_request(BANK, purpose="credit_research", **facts),
                  "purpose_not_allowed")
    assert denied(decide_verify_request(Actor("x", "auditor"), purpose="loan_application",
                                        **facts), "role_not_allowed")
    no_verify = {"tax": open_policy(frozenset({"aggregate"}))}
    assert denied(decide_verify_request(BANK, no_verify, [agreement()], "loan_application", NOW),
                  "query_not_allowed")


def check(**overrides: Any) -> Decision:
    facts = {"bank_id": "bank_a", "subject_uscc": SUBJECT, "purpose": "loan_application",
             "dataset": "tax", "field": "annual_tax", "op": ">=", "policy": TAX,
             "consents": [consent(datasets=("tax",))], "now": NOW}
    return decide_verify_check(**{**facts, **overrides})


def test_verify_check_allowed_names_the_consent():
    decision = check()
    assert decision.allowed
    assert decision.consent_ids == ("con_1",)


@pytest.mark.parametrize(("overrides", "code"), [
    ({"field": "headcount"}, "column_not_allowed"),
    ({"op": "="}, "query_not_allowed"),
    ({"policy": None}, "query_not_allowed"),
    ({"purpose": "credit_research"}, "purpose_not_allowed"),
    ({"consents": []}, "consent_required"),
    ({"consents": [consent(datasets=("court",))]}, "consent_required"),
    ({"consents": [consent("bank_b")]}, "consent_required"),
    ({"consents": [consent(subject=SUBJECTS[1])]}, "consent_required"),
    ({"consents": [consent(purpose="post_loan_monitoring")]}, "consent_required"),
    ({"consents": [consent(expires_at=NOW)]}, "consent_required"),
    ({"consents": [consent(revoked_at=NOW)]}, "consent_required"),
    ({"consents": [consent(granted_at=NOW + MICRO)]}, "consent_required"),
    ({"consents": [consent(fields=frozenset({"tax.tax_arrears"}))]}, "consent_required"),
])
def test_verify_check_denials(overrides, code):
    assert denied(check(**overrides), code)


def test_verify_check_without_consent_requirement():
    document = {**API_EXAMPLE, "verify": {**API_EXAMPLE["verify"], "consent_required": False}}
    decision = check(policy=parse_policy(document, COLUMNS), consents=[])
    assert decision.allowed
    assert decision.consent_ids == ()


def test_verify_check_field_scoped_consent():
    scoped = consent(fields=frozenset({"tax.annual_tax"}))
    assert check(consents=[scoped]).allowed
    assert denied(check(consents=[scoped], field="tax_arrears", op="="), "consent_required")


# --- train ------------------------------------------------------------------------------------

def train(**overrides: Any) -> Decision:
    facts = {"actor": BANK, "datasets": {"tax": TAX}, "agreements": [agreement()],
             "purpose": "credit_modeling", "now": NOW, "custom_code": False}
    return decide_train(**{**facts, **overrides})


def test_train_template_allowed():
    assert train().allowed


@pytest.mark.parametrize(("overrides", "code"), [
    ({"custom_code": True}, "review_required"),
    ({"purpose": "loan_application"}, "purpose_not_allowed"),
    ({"datasets": {"tax": open_policy(frozenset({"verify"}))}}, "query_not_allowed"),
    ({"agreements": [agreement(valid_until=NOW)]}, "no_agreement"),
    ({"actor": Actor("d", "department")}, "role_not_allowed"),
])
def test_train_denials(overrides, code):
    assert denied(train(**overrides), code)


def test_custom_code_after_approval_or_where_no_review_is_required():
    assert train(custom_code=True, code_approved=True).allowed
    assert train(custom_code=True, datasets={"tax": open_policy()}).allowed


def test_training_size():
    assert decide_training_size({"tax": TAX}, 500).allowed
    assert denied(decide_training_size({"tax": TAX}, 499), "query_not_allowed")


# --- score ------------------------------------------------------------------------------------

def test_score_request():
    assert decide_score_request(BANK, {"tax": TAX}, [agreement()], "credit_modeling", NOW).allowed
    assert denied(decide_score_request(BANK, {"tax": TAX}, [], "credit_modeling", NOW),
                  "no_agreement")


def score(**overrides: Any) -> Decision:
    facts = {"bank_id": "bank_a", "subject_uscc": SUBJECT, "purpose": "credit_modeling",
             "datasets": {"tax": TAX, "court": COURT},
             "features": {"tax.annual_tax", "court.headcount"},
             "consents": [consent(purpose="credit_modeling", datasets=("tax",))],
             "scores_today": 0, "now": NOW}
    return decide_score_subject(**{**facts, **overrides})


def test_score_subject_needs_consent_only_where_the_policy_says():
    decision = score()
    assert decision.allowed
    assert decision.consent_ids == ("con_1",)


def test_score_subject_consents_may_combine_per_dataset():
    strict = {"tax": TAX, "social": TAX}
    two = [consent(purpose="credit_modeling", datasets=("tax",), id="c1"),
           consent(purpose="credit_modeling", datasets=("social",), id="c2")]
    assert score(datasets=strict, consents=two).consent_ids == ("c1", "c2")
    assert denied(score(datasets=strict, consents=two[:1]), "consent_required")


@pytest.mark.parametrize(("overrides", "code"), [
    ({"consents": []}, "consent_required"),
    ({"consents": [consent(purpose="loan_application")]}, "consent_required"),
    ({"consents": [consent("bank_b", purpose="credit_modeling")]}, "consent_required"),
    ({"consents": [consent(purpose="credit_modeling",
                           fields=frozenset({"tax.tax_arrears"}))]}, "consent_required"),
    ({"scores_today": 3}, "threshold_exceeded"),
    ({"datasets": {"tax": None}}, "query_not_allowed"),
])
def test_score_subject_denials(overrides, code):
    assert denied(score(**overrides), code)


def test_score_subject_limit_is_the_strictest():
    document = {**API_EXAMPLE, "model": {**API_EXAMPLE["model"],
                                          "max_scores_per_subject_per_day": 1}}
    strict = parse_policy(document, COLUMNS)
    assert denied(score(datasets={"tax": strict, "court": COURT}, scores_today=1),
                  "threshold_exceeded")
    assert score(datasets={"tax": strict, "court": COURT}, scores_today=0).allowed


def test_score_subject_field_scoped_consent_covering_the_features():
    scoped = consent(purpose="credit_modeling", fields=frozenset({"tax.annual_tax"}))
    assert score(consents=[scoped]).allowed
    assert denied(score(consents=[scoped], features={"tax.annual_tax", "tax.headcount"}),
                  "consent_required")


# --- self-query -------------------------------------------------------------------------------

def test_self_query_is_for_enterprises_only():
    assert decide_self_query(Actor("e", "enterprise", SUBJECT)).allowed
    assert denied(decide_self_query(Actor("e", "enterprise")), "role_not_allowed")
    for role in ("bank", "department", "auditor", "admin"):
        assert denied(decide_self_query(Actor("x", role)), "role_not_allowed")


def test_window_is_microsecond_exact_for_agreements():
    edge = [agreement(valid_until=NOW + timedelta(microseconds=1))]
    assert aggregate(agreements=edge).allowed
    assert denied(aggregate(agreements=edge, now=NOW + MICRO), "no_agreement")
