"""Issue 3's acceptance properties, over random agreements, consents and requests.

Each property states an invariant of every decision; the examples only make the worlds small.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from policies.decisions import (
    Decision,
    ScoringRules,
    decide_aggregate,
    decide_score_request,
    decide_score_subject,
    decide_train,
    decide_verify_check,
    decide_verify_request,
)
from policies.facts import Actor, Agreement, Consent
from tests.policies.worlds import (
    BANKS,
    DATASETS,
    FIELDS,
    MICRO,
    PURPOSES,
    SUBJECTS,
    agreements,
    consents,
    near_agreements,
    near_consents,
    nows,
    open_policy,
    subsets,
)

SECTIONS = ("aggregate", "verify", "model")


def request_wide(use: str, actor: Actor, datasets: frozenset[str], sections: frozenset[str],
                 agreements_: list[Agreement], purpose: str, now: datetime) -> Decision:
    policies = {name: open_policy(sections) for name in datasets}
    if use == "aggregate":
        return decide_aggregate(actor, policies, agreements_, purpose, {"count"}, now)
    if use == "verify":
        return decide_verify_request(actor, policies, agreements_, purpose, now)
    if use == "train":
        return decide_train(actor, policies, agreements_, purpose, now, custom_code=False)
    return decide_score_request(actor, policies, agreements_, purpose, now)


USES = st.sampled_from(["aggregate", "verify", "train", "score"])
SECTION_OF = {"aggregate": "aggregate", "verify": "verify", "train": "model", "score": "model"}


def covered(agreement: Agreement, bank: str, dataset: str, purpose: str, now: datetime) -> bool:
    # Restated from the rule, not from the code: names bank, dataset, purpose; now in window.
    return (agreement.bank_id == bank and dataset in agreement.datasets
            and purpose in agreement.purposes and now < agreement.valid_until
            and (agreement.ended_at is None or now < agreement.ended_at))


@given(data=st.data(), now=nows, use=USES, bank=st.sampled_from(BANKS),
       datasets=subsets(DATASETS, min_size=1), purpose=st.sampled_from(PURPOSES))
def test_no_allow_without_a_live_agreement_naming_dataset_and_purpose(
        data, now, use, bank, datasets, purpose):
    agreements_ = data.draw(st.lists(
        agreements(now) | near_agreements(now, bank, datasets, purpose), max_size=4))
    decision = request_wide(use, Actor(bank, "bank"), datasets, frozenset(SECTIONS),
                            agreements_, purpose, now)
    every_dataset_covered = all(
        any(covered(a, bank, name, purpose, now) for a in agreements_) for name in datasets)
    # With an open policy the agreement is the only thing left to decide: exactly iff.
    assert decision.allowed == every_dataset_covered
    event(f"allowed={decision.allowed}")
    if not decision.allowed:
        assert decision.code in {"no_agreement", "purpose_not_allowed"}
    else:
        by_id = {a.id: a for a in agreements_}
        assert decision.agreement_ids
        assert all(any(covered(a, bank, name, purpose, now)
                       for a in agreements_ if a.id in decision.agreement_ids)
                   for name in datasets)
        assert set(decision.agreement_ids) <= set(by_id)


@given(now=nows, use=USES, datasets=subsets(DATASETS, min_size=1),
       sections=subsets(SECTIONS), purpose=st.sampled_from(PURPOSES))
def test_an_absent_policy_section_forbids_that_use(now, use, datasets, sections, purpose):
    everything = [Agreement("agr", "bank_a", frozenset(DATASETS), frozenset(PURPOSES),
                            now + MICRO)]
    decision = request_wide(use, Actor("bank_a", "bank"), datasets, sections, everything,
                            purpose, now)
    assert decision.allowed == (SECTION_OF[use] in sections)
    if not decision.allowed:
        assert decision.code == "query_not_allowed"


@given(data=st.data(), now=nows, use=USES, role=st.sampled_from(
    ["department", "enterprise", "auditor", "admin"]))
def test_only_banks_use_data(data, now, use, role):
    agreements_ = data.draw(st.lists(agreements(now), max_size=3))
    decision = request_wide(use, Actor("bank_a", role), frozenset(DATASETS),
                            frozenset(SECTIONS), agreements_, "loan_application", now)
    assert decision.code == "role_not_allowed"


# --- consent-gated checks ---------------------------------------------------------------------

def serving(c: Consent, bank: str, subject: str, purpose: str, dataset: str, field: str,
            now: datetime) -> bool:
    # The rule restated: live (granted, not expired, not revoked), and the exact scope.
    live = (c.granted_at <= now < c.expires_at
            and (c.revoked_at is None or now < c.revoked_at))
    in_scope = dataset in c.datasets and (c.fields is None or f"{dataset}.{field}" in c.fields)
    return (live and in_scope and c.grantee_bank_id == bank and c.subject_uscc == subject
            and c.purpose == purpose)


def both_checks(bank: str, subject: str, purpose: str, dataset: str, field: str,
                consents_: list[Consent], now: datetime) -> tuple[Decision, Decision]:
    """The verify check and the score check on the same facts; both must obey the rule."""
    verify = decide_verify_check(bank, subject, purpose, dataset, field, "=",
                                 open_policy(), consents_, now)
    score = decide_score_subject(bank, subject, purpose, {dataset: open_policy()},
                                 {f"{dataset}.{field}"}, consents_, 0, now)
    return verify, score


def _check(consents_: list[Consent], now: datetime,
           request: dict[str, str]) -> tuple[Decision, Decision]:
    return both_checks(request["bank"], request["subject"], request["purpose"],
                       request["dataset"], request["field"], consents_, now)


def any_consents(now: datetime, request: dict[str, str]) -> st.SearchStrategy[Consent]:
    """Random consents, half of them built to (almost) fit the request."""
    return consents(now) | near_consents(now, **request)


check_requests = st.fixed_dictionaries({
    "bank": st.sampled_from(BANKS), "subject": st.sampled_from(SUBJECTS),
    "purpose": st.sampled_from(PURPOSES), "dataset": st.sampled_from(DATASETS),
    "field": st.sampled_from(FIELDS),
})


@given(data=st.data(), now=nows, request=check_requests)
def test_a_consent_gated_allow_rests_only_on_consents_that_serve_exactly(data, now, request):
    consents_ = data.draw(st.lists(any_consents(now, request), max_size=5))
    expected = {c.id for c in consents_ if serving(c, now=now, **request)}
    for decision in _check(consents_, now, request):
        assert decision.allowed == bool(expected)
        event(f"allowed={decision.allowed}")
        assert set(decision.consent_ids) == expected
        if not decision.allowed:
            assert decision.code == "consent_required"


@given(data=st.data(), now=nows, request=check_requests)
def test_a_revoked_or_expired_consent_never_allows(data, now, request):
    drawn = data.draw(st.lists(any_consents(now, request), min_size=1, max_size=5))
    dead = [c for c in drawn if c.expires_at <= now or (c.revoked_at is not None
                                                         and c.revoked_at <= now)]
    assume(dead)  # else nothing is tested: no consent at all is denied anyway
    for decision in _check(dead, now, request):
        assert not decision.allowed


@given(data=st.data(), now=nows, request=check_requests)
def test_a_consent_for_bank_a_never_serves_bank_b(data, now, request):
    drawn = data.draw(st.lists(any_consents(now, request), min_size=1, max_size=5))
    others = [c for c in drawn if c.grantee_bank_id != request["bank"]]
    assume(others)
    for decision in _check(others, now, request):
        assert not decision.allowed


@given(data=st.data(), now=nows, request=check_requests)
def test_a_consent_for_purpose_p_never_serves_purpose_q(data, now, request):
    drawn = data.draw(st.lists(any_consents(now, request), min_size=1, max_size=5))
    others = [c for c in drawn if c.purpose != request["purpose"]]
    assume(others)
    for decision in _check(others, now, request):
        assert not decision.allowed


@given(data=st.data(), now=nows, request=check_requests)
def test_a_field_outside_the_consented_fields_is_denied(data, now, request):
    drawn = data.draw(st.lists(any_consents(now, request), max_size=5))
    ref = f"{request['dataset']}.{request['field']}"
    others = [c for c in drawn if c.fields is not None and ref not in c.fields]
    assume(others)
    for decision in _check(others, now, request):
        assert not decision.allowed


@given(now=nows, request=check_requests, revoke=st.booleans())
def test_the_expiry_and_revocation_instants_are_exact(now, request, revoke):
    edge = now + MICRO
    consent_ = Consent("con", request["subject"], request["bank"], request["purpose"],
                       frozenset(DATASETS), None, expires_at=edge if not revoke else edge + MICRO,
                       granted_at=now - MICRO, revoked_at=edge if revoke else None)
    agreement = Agreement("agr", request["bank"], frozenset(DATASETS), frozenset(PURPOSES), edge)
    actor = Actor(request["bank"], "bank")
    for at, live in ((now, True), (edge, False)):
        for decision in _check([consent_], at, request):
            assert decision.allowed == live
        for use in ("aggregate", "verify", "train", "score"):
            decision = request_wide(use, actor, frozenset({request["dataset"]}),
                                    frozenset(SECTIONS), [agreement], request["purpose"], at)
            assert decision.allowed == live


# --- scoring a batch ---------------------------------------------------------------------------

policies_or_none = st.sampled_from([
    None, open_policy(frozenset({"aggregate"})), open_policy(),
    open_policy(model={"purposes": list(PURPOSES), "scoring_consent_required": False,
                       "max_scores_per_subject_per_day": 2}),
    open_policy(model={"purposes": list(PURPOSES), "max_scores_per_subject_per_day": 1}),
])


@settings(max_examples=200)
@given(data=st.data(), now=nows, bank=st.sampled_from(BANKS),
       purpose=st.sampled_from(PURPOSES),
       policies=st.dictionaries(st.sampled_from(DATASETS), policies_or_none, min_size=1),
       features=subsets(tuple(f"{d}.{f}" for d in DATASETS for f in FIELDS)))
def test_a_batch_is_decided_as_each_subject_alone(data, now, bank, purpose, policies, features):
    consents_ = data.draw(st.lists(consents(now) | near_consents(
        now, bank=bank, subject=data.draw(st.sampled_from(SUBJECTS)), purpose=purpose,
        dataset=data.draw(st.sampled_from(DATASETS)), field=data.draw(st.sampled_from(FIELDS))),
        max_size=6))
    subjects = data.draw(st.lists(st.sampled_from([*SUBJECTS, "91000000000000000X"]),
                                  unique=True))
    today = data.draw(st.dictionaries(st.sampled_from(SUBJECTS), st.integers(0, 3)))
    by_subject: dict[str, list[Consent]] = {}
    for c in consents_:
        by_subject.setdefault(c.subject_uscc, []).append(c)
    rules = ScoringRules.of(policies, features)
    batch = rules.decide_each(bank, purpose, subjects, by_subject, today, now)
    assert batch == [rules.decide(bank, s, purpose, by_subject.get(s, ()), today.get(s, 0), now)
                     for s in subjects]
    assert batch == [decide_score_subject(bank, s, purpose, policies, features, consents_,
                                          today.get(s, 0), now) for s in subjects]
