"""Verification decided for a whole batch: each (subject, check) allowed, or null with a code.

The same rules as `decide_verify_check` and `decide_extraction`, organised so that 10,000
subjects × 10 checks cost one pass: policy rules once per check, consent and limits per cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

from policies.decisions import Decision, verify_rule_denial
from policies.documents import DatasetPolicy
from policies.extraction import decide_extraction
from policies.facts import Consent, require_aware
from policies.names import field_ref

NO_CONSENT_SCOPE = "*"  # the extraction limit's scope where a policy needs no consent: for ever


@dataclass(frozen=True)
class CheckRule:
    """One check of a request: `dataset.field op value`, the value already canonical."""

    dataset: str
    field: str
    op: str
    value_key: str


@dataclass(frozen=True)
class Asked:
    """A distinct value a bank has tested on one subject's field, within one scope."""

    subject: str
    field: str  # dataset.field
    scope: str  # the consent id, or NO_CONSENT_SCOPE
    value_key: str


@dataclass(frozen=True)
class BatchVerdict:
    decisions: list[list[Decision]]  # per subject, per check
    newly_asked: list[Asked]  # to record, so the limit holds across requests


def check_rule_decision(
    policy: DatasetPolicy | None, rule: CheckRule, purpose: str
) -> Decision | None:
    """The part of a check's decision that does not depend on the subject (None: go on)."""
    return verify_rule_denial(policy, rule.dataset, rule.field, rule.op, purpose)


def decide_verify_batch(
    bank_id: str,
    purpose: str,
    subjects: Sequence[str],
    checks: Sequence[CheckRule],
    policies: Mapping[str, DatasetPolicy | None],
    consents: Iterable[Consent],
    asked: Mapping[tuple[str, str, str], AbstractSet[str]],
    now: datetime,
) -> BatchVerdict:
    """Decide every cell; `asked` maps (subject, dataset.field, scope) to the values tested."""
    require_aware("now", now)
    by_subject: dict[str, list[Consent]] = defaultdict(list)
    for c in consents:
        if c.grantee_bank_id == bank_id and c.purpose == purpose and c.is_live(now):
            by_subject[c.subject_uscc].append(c)
    for listed in by_subject.values():
        listed.sort(key=lambda c: (c.granted_at, c.id))
    fixed = [check_rule_decision(policies.get(r.dataset), r, purpose) for r in checks]
    verify_rules = [None if f is not None else policies[r.dataset].verify  # type: ignore[union-attr]
                    for r, f in zip(checks, fixed, strict=True)]
    tested: dict[tuple[str, str, str], set[str]] = {}
    newly: list[Asked] = []
    decisions: list[list[Decision]] = []
    # Decisions are immutable: one object per distinct outcome serves every cell that has it.
    no_consent_needed = Decision.allow("the policy requires no consent")
    consented: dict[str, Decision] = {}
    denied_consent = {
        i: Decision.deny("consent_required", f"no live consent from the subject covers "
                         f"{r.dataset}.{r.field} for this bank and purpose {purpose}")
        for i, r in enumerate(checks)
    }
    over_limit: dict[int, Decision] = {}
    refs = [field_ref(r.dataset, r.field) for r in checks]
    # Which of the request's (dataset, field) pairs each consent covers, computed once per
    # distinct scope: thousands of consents share a handful of scopes.
    pairs = sorted({(r.dataset, r.field) for r in checks})
    by_scope: dict[tuple[frozenset[str], frozenset[str] | None], frozenset[tuple[str, str]]] = {}
    covered: dict[str, frozenset[tuple[str, str]]] = {}
    for listed in by_subject.values():
        for c in listed:
            sig = (c.datasets, c.fields)
            hit = by_scope.get(sig)
            if hit is None:
                hit = by_scope[sig] = frozenset(p for p in pairs if c.covers(p[0], (p[1],)))
            covered[c.id] = hit

    for subject in subjects:
        row: list[Decision] = []
        mine = by_subject.get(subject, ())
        covering: dict[tuple[str, str], str | None] = {}
        for i, (rule, fixed_decision, rules) in enumerate(
            zip(checks, fixed, verify_rules, strict=True)
        ):
            if fixed_decision is not None:
                row.append(fixed_decision)
                continue
            assert rules is not None
            decision = no_consent_needed
            scope = NO_CONSENT_SCOPE
            if rules.consent_required:
                where = (rule.dataset, rule.field)
                if where not in covering:
                    # The oldest covering consent carries the count, so a second consent does
                    # not open a fresh allowance for the same field.
                    covering[where] = next((c.id for c in mine if where in covered[c.id]), None)
                found = covering[where]
                if found is None:
                    row.append(denied_consent[i])
                    continue
                scope = found
                decision = consented.get(scope) or consented.setdefault(
                    scope, Decision.allow("consented", consent_ids=[scope]))
            key = (subject, refs[i], scope)
            so_far = tested.get(key)
            if so_far is None:
                so_far = tested[key] = set(asked.get(key, frozenset()))
            limit = rules.max_distinct_values_per_consent
            if rule.value_key not in so_far:
                if len(so_far) >= limit:
                    row.append(over_limit.get(limit) or over_limit.setdefault(
                        limit, decide_extraction(so_far, rule.value_key, limit)))
                    continue
                so_far.add(rule.value_key)
                newly.append(Asked(subject, refs[i], scope, rule.value_key))
            row.append(decision)
        decisions.append(row)
    return BatchVerdict(decisions, newly)
