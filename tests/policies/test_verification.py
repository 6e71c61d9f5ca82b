"""The batch verification decision agrees with the per-check rules, and the extraction limit
holds over any sequence of batches."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from policies.decisions import decide_verify_check
from policies.facts import Consent
from policies.verification import CheckRule, decide_verify_batch
from tests.policies.worlds import (
    DATASETS,
    FIELDS,
    NOW,
    PURPOSES,
    SUBJECTS,
    consent,
    consents,
    near_consents,
    open_policy,
)

OPS = ("=", "!=", ">=", "<=", ">", "<")
rules = st.builds(CheckRule, st.sampled_from(DATASETS), st.sampled_from((*FIELDS, "missing")),
                  st.sampled_from(OPS), st.sampled_from(("num:1", "num:2", "num:3", "num:4")))


@st.composite
def consents_for(draw: st.DrawFn, checks: list[CheckRule], purpose: str) -> Consent:
    """A consent that fits one of the checks for one subject, or misses it in one random way."""
    rule = draw(st.sampled_from(checks))
    field = rule.field if rule.field in FIELDS else draw(st.sampled_from(FIELDS))
    return draw(near_consents(NOW, "bank_a", draw(st.sampled_from(SUBJECTS)), purpose,
                              rule.dataset, field))


@settings(max_examples=300)
@given(
    data=st.data(),
    purpose=st.sampled_from(PURPOSES),
    checks=st.lists(rules, min_size=1, max_size=4),
    # Weighted to the verify section: only there does a consent decide anything.
    sections=st.sampled_from([frozenset({"verify"})] * 3 + [frozenset({"aggregate"})]),
)
def test_batch_matches_the_single_check_rule(data, purpose, checks, sections) -> None:
    # Mostly consents built to (almost) fit a check; consent ids are unique, as in the store
    # (the batch keys what each consent covers by id).
    granted = data.draw(st.lists(consents_for(checks, purpose) | consents_for(checks, purpose)
                                 | consents(NOW), max_size=5, unique_by=lambda c: c.id))
    policies = {d: open_policy(sections) for d in DATASETS}
    verdict = decide_verify_batch("bank_a", purpose, SUBJECTS, checks, policies, granted, {},
                                  NOW)
    allowed = 0
    for subject, row in zip(SUBJECTS, verdict.decisions, strict=True):
        for rule, decision in zip(checks, row, strict=True):
            single = decide_verify_check("bank_a", subject, purpose, rule.dataset, rule.field,
                                         rule.op, policies[rule.dataset], granted, NOW)
            event(f"a single check: {'allowed' if single.allowed else single.code}")
            if not single.allowed:
                assert decision.code == single.code
            else:  # the batch may still refuse on the extraction limit (3 distinct values)
                allowed += 1
                event(f"its batch decision: {decision.code or 'allowed'}")
                assert decision.allowed or decision.code == "threshold_exceeded"
    event("some single check allowed" if allowed else "every single check denied")


@given(st.lists(st.lists(st.tuples(st.sampled_from(SUBJECTS), st.integers(0, 9)), min_size=1,
                         max_size=8), min_size=1, max_size=8))
def test_extraction_limit_holds_across_batches(batches) -> None:
    """Whatever values a bank asks, at most 3 distinct ones per subject and field are answered."""
    policies = {d: open_policy(frozenset({"verify"})) for d in DATASETS}
    granted = [consent(subject=s, id=f"con_{i}") for i, s in enumerate(SUBJECTS)]
    asked: dict[tuple[str, str, str], frozenset[str]] = {}
    answered: dict[tuple[str, str], set[str]] = defaultdict(set)
    for batch in batches:
        for subject, value in batch:
            rule = CheckRule("tax", "annual_tax", ">=", f"num:{value}")
            verdict = decide_verify_batch("bank_a", "loan_application", [subject], [rule],
                                          policies, granted, asked, NOW)
            for a in verdict.newly_asked:
                key = (a.subject, a.field, a.scope)
                asked[key] = asked.get(key, frozenset()) | {a.value_key}
            if verdict.decisions[0][0].allowed:
                answered[(subject, "tax.annual_tax")].add(rule.value_key)
            else:
                assert verdict.decisions[0][0].code == "threshold_exceeded"
    assert all(len(values) <= 3 for values in answered.values())


def test_repeating_a_value_is_free_and_scope_is_the_oldest_consent() -> None:
    policies = {d: open_policy(frozenset({"verify"})) for d in DATASETS}
    old = consent(id="con_old", granted_at=NOW - timedelta(days=10))
    new = consent(id="con_new")
    rule = CheckRule("tax", "annual_tax", ">=", "num:5")
    first = decide_verify_batch("bank_a", "loan_application", [SUBJECTS[0]], [rule, rule],
                                policies, [new, old], {}, NOW)
    assert [d.allowed for d in first.decisions[0]] == [True, True]
    assert [a.scope for a in first.newly_asked] == ["con_old"]
    full = {(SUBJECTS[0], "tax.annual_tax", "con_old"): frozenset({"num:1", "num:2", "num:3"})}
    again = decide_verify_batch("bank_a", "loan_application", [SUBJECTS[0]],
                                [CheckRule("tax", "annual_tax", ">=", "num:2"), rule],
                                policies, [new, old], full, NOW)
    assert [d.code for d in again.decisions[0]] == [None, "threshold_exceeded"]
