"""One decision per use of data (aggregate, verify, train, score, self-query): facts in, verdict.

None raises on a refusal: each returns a `Decision` that the service audits, then acts on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from policies.documents import DatasetPolicy
from policies.errors import DenialCode, PolicyDenied
from policies.facts import Actor, Agreement, Consent, require_aware
from policies.names import split_field_ref
from policies.roles import role_may


@dataclass(frozen=True, slots=True)
class Decision:
    """Allow, or deny with a stable api.md code; `reason` is human text and never a data value.

    An allow names the agreements and consents it rests on, for the audit event.
    """

    allowed: bool
    code: DenialCode | None
    reason: str
    agreement_ids: tuple[str, ...] = ()
    consent_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.allowed != (self.code is None):
            raise ValueError("an allow has no code and a denial has one")

    @classmethod
    def allow(
        cls,
        reason: str = "allowed",
        *,
        agreement_ids: Iterable[str] = (),
        consent_ids: Iterable[str] = (),
    ) -> Decision:
        """An allow; the ids are sorted and deduplicated so equal facts give equal decisions."""
        return cls(True, None, reason, tuple(sorted(set(agreement_ids))),
                   tuple(sorted(set(consent_ids))))

    @classmethod
    def deny(cls, code: DenialCode, reason: str) -> Decision:
        """A denial with its stable code."""
        return cls(False, code, reason)

    def raise_if_denied(self) -> None:
        """Raise `PolicyDenied` with this code and reason unless allowed."""
        if self.code is not None:
            raise PolicyDenied(self.code, self.reason)


class _Section(Protocol):
    @property
    def purposes(self) -> Sequence[str]: ...


_S = TypeVar("_S", bound=_Section)


@dataclass(frozen=True, slots=True)
class _Cleared(Generic[_S]):
    """The request-wide checks passed: each dataset's section, and the agreements relied on."""

    sections: dict[str, _S]
    agreement_ids: list[str]


def verify_rule_denial(
    policy: DatasetPolicy | None, dataset: str, field: str, op: str, purpose: str
) -> Decision | None:
    """The part of a check's decision that does not depend on the subject (None: go on)."""
    rules = None if policy is None else policy.verify
    if rules is None:
        return Decision.deny("query_not_allowed", f"the policy of dataset {dataset} forbids "
                             "verification")
    if purpose not in rules.purposes:
        return Decision.deny("purpose_not_allowed", f"the policy of dataset {dataset} does not "
                             f"allow verification for purpose {purpose}")
    ops = rules.fields.get(field)
    if ops is None:
        return Decision.deny("column_not_allowed", f"{dataset}.{field} is not verifiable")
    if op not in ops:
        return Decision.deny("query_not_allowed", f"operator {op} is not allowed on "
                             f"{dataset}.{field}")
    return None


def _role_denial(actor: Actor, operation: str) -> Decision | None:
    if not role_may(actor.role, operation):
        return Decision.deny("role_not_allowed",
                             f"the {actor.role} role may not perform {operation}")
    return None


def _agreement_decision(
    bank_id: str, dataset: str, purpose: str, agreements: Iterable[Agreement], now: datetime,
) -> Decision:
    live = [a for a in agreements if a.names(bank_id, dataset) and a.is_live(now)]
    if not live:
        return Decision.deny("no_agreement", f"no live agreement names dataset {dataset}")
    # The agreement fixes the use: a live agreement for another purpose does not stretch.
    covering = [a.id for a in live if purpose in a.purposes]
    if not covering:
        return Decision.deny(
            "purpose_not_allowed",
            f"no live agreement allows purpose {purpose} on dataset {dataset}",
        )
    return Decision.allow(agreement_ids=covering)


def _clear_request(
    actor: Actor,
    operation: str,
    use: str,
    datasets: Mapping[str, DatasetPolicy | None],
    agreements: Collection[Agreement],
    purpose: str,
    now: datetime,
    own_datasets: AbstractSet[str],
    section: Callable[[DatasetPolicy], _S | None],
) -> Decision | _Cleared[_S]:
    """Role, then per dataset (sorted: the first denial is stable): agreement, section, purpose."""
    require_aware("now", now)
    denial = _role_denial(actor, operation)
    if denial is not None:
        return denial
    if not datasets:
        return Decision.deny("query_not_allowed", f"{use} must name at least one dataset")
    cleared: _Cleared[_S] = _Cleared({}, [])
    for name in sorted(datasets):
        # A bank's own private dataset needs no agreement with itself; its policy still applies.
        if name not in own_datasets:
            agreement = _agreement_decision(actor.id, name, purpose, agreements, now)
            if not agreement.allowed:
                return agreement
            cleared.agreement_ids.extend(agreement.agreement_ids)
        policy = datasets[name]
        rules = None if policy is None else section(policy)
        if rules is None:
            return Decision.deny("query_not_allowed", f"the policy of dataset {name} forbids {use}")
        if purpose not in rules.purposes:
            return Decision.deny(
                "purpose_not_allowed", f"the policy of dataset {name} does not allow {use} "
                f"for purpose {purpose}",
            )
        cleared.sections[name] = rules
    return cleared


def decide_aggregate(
    actor: Actor,
    datasets: Mapping[str, DatasetPolicy | None],
    agreements: Collection[Agreement],
    purpose: str,
    functions: AbstractSet[str],
    now: datetime,
    *,
    own_datasets: AbstractSet[str] = frozenset(),
) -> Decision:
    """May `actor` run an aggregate using `functions` over `datasets` for `purpose`?"""
    cleared = _clear_request(actor, "query", "aggregate queries", datasets, agreements, purpose,
                             now, own_datasets, lambda policy: policy.aggregate)
    if isinstance(cleared, Decision):
        return cleared
    if not functions:
        return Decision.deny("query_not_allowed", "an aggregate query needs an aggregate function")
    for name, rules in cleared.sections.items():
        refused = sorted(set(functions) - set(rules.functions))
        if refused:
            return Decision.deny(
                "function_not_allowed",
                f"the policy of dataset {name} does not allow {', '.join(refused)}",
            )
    return Decision.allow(agreement_ids=cleared.agreement_ids)


def decide_verify_request(
    actor: Actor,
    datasets: Mapping[str, DatasetPolicy | None],
    agreements: Collection[Agreement],
    purpose: str,
    now: datetime,
    *,
    own_datasets: AbstractSet[str] = frozenset(),
) -> Decision:
    """The request-wide verification gate (a 403 when denied): role, agreements, purpose."""
    cleared = _clear_request(actor, "verify", "verification", datasets, agreements, purpose, now,
                             own_datasets, lambda policy: policy.verify)
    if isinstance(cleared, Decision):
        return cleared
    return Decision.allow(agreement_ids=cleared.agreement_ids)


def decide_verify_check(
    bank_id: str,
    subject_uscc: str,
    purpose: str,
    dataset: str,
    field: str,
    op: str,
    policy: DatasetPolicy | None,
    consents: Iterable[Consent],
    now: datetime,
) -> Decision:
    """One check on one subject (a `null` answer when denied): field, operator, consent.

    An allow under consent names the consents used: the extraction limit is counted per consent.
    """
    require_aware("now", now)
    denied = verify_rule_denial(policy, dataset, field, op, purpose)
    if denied is not None:
        return denied
    rules = policy.verify if policy is not None else None  # set: else denied above
    if rules is not None and not rules.consent_required:
        return Decision.allow("the policy requires no consent")
    used = [c.id for c in consents
            if c.serves(bank_id, subject_uscc, purpose, now) and c.covers(dataset, (field,))]
    if not used:
        return Decision.deny("consent_required", f"no live consent from the subject covers "
                             f"{dataset}.{field} for this bank and purpose {purpose}")
    return Decision.allow("consented", consent_ids=used)


def decide_train(
    actor: Actor,
    datasets: Mapping[str, DatasetPolicy | None],
    agreements: Collection[Agreement],
    purpose: str,
    now: datetime,
    *,
    custom_code: bool,
    code_approved: bool = False,
    own_datasets: AbstractSet[str] = frozenset(),
) -> Decision:
    """May `actor` train on `datasets` (features and label) for `purpose` on real data?

    `review_required` means "hold the job for a department", not a refusal of the request:
    decide again with `code_approved=True` after approval, since agreements may have ended.
    """
    cleared = _clear_request(actor, "job.submit", "model training", datasets, agreements,
                             purpose, now, own_datasets, lambda policy: policy.model)
    if isinstance(cleared, Decision):
        return cleared
    if custom_code and not code_approved:
        strict = sorted(name for name, rules in cleared.sections.items()
                        if rules.custom_code_requires_review)
        if strict:
            return Decision.deny("review_required", "custom code must be approved by a department "
                                 f"before it reads {', '.join(strict)}")
    return Decision.allow(agreement_ids=cleared.agreement_ids)


def decide_training_size(datasets: Mapping[str, DatasetPolicy | None], n_rows: int) -> Decision:
    """Is the joined training set at least every dataset's `min_training_rows`?"""
    minimum = max((policy.model.min_training_rows for policy in datasets.values()
                   if policy is not None and policy.model is not None), default=1)
    if n_rows < minimum:
        return Decision.deny("query_not_allowed", f"training needs at least {minimum} rows")
    return Decision.allow()


def decide_score_request(
    actor: Actor,
    datasets: Mapping[str, DatasetPolicy | None],
    agreements: Collection[Agreement],
    purpose: str,
    now: datetime,
    *,
    own_datasets: AbstractSet[str] = frozenset(),
) -> Decision:
    """The request-wide scoring gate (a 403 when denied) over every dataset the model reads."""
    cleared = _clear_request(actor, "model.score", "scoring", datasets, agreements, purpose, now,
                             own_datasets, lambda policy: policy.model)
    if isinstance(cleared, Decision):
        return cleared
    return Decision.allow(agreement_ids=cleared.agreement_ids)


@dataclass(frozen=True, slots=True)
class ScoringRules:
    """The datasets' `model` rules for one model's features, worked out once per score request
    and then applied to each subject (a batch has up to 10,000).

    `steps` in dataset-name order: (dataset, its model fields) where a consent is required, or
    (dataset, None) where the policy forbids scoring; `daily_limit` the strictest cap.
    """

    steps: tuple[tuple[str, tuple[str, ...] | None], ...]
    daily_limit: int | None

    @classmethod
    def of(cls, datasets: Mapping[str, DatasetPolicy | None],
           features: AbstractSet[str]) -> ScoringRules:
        refs = [ref for ref in map(split_field_ref, features) if ref]
        steps: list[tuple[str, tuple[str, ...] | None]] = []
        limit: int | None = None
        for name in sorted(datasets):
            policy = datasets[name]
            rules = None if policy is None else policy.model
            if rules is None:
                steps.append((name, None))
                continue
            cap = rules.max_scores_per_subject_per_day
            limit = cap if limit is None else min(limit, cap)
            if rules.scoring_consent_required:
                steps.append((name, tuple(field for ds, field in refs if ds == name)))
        return cls(tuple(steps), limit)

    def decide(self, bank_id: str, subject_uscc: str, purpose: str,
               consents: Iterable[Consent], scores_today: int, now: datetime) -> Decision:
        """May this subject be scored (a `null` score when denied)? Consent, then the cap."""
        require_aware("now", now)
        return self._decide(bank_id, subject_uscc, purpose, consents, scores_today, now,
                            self._refusals(purpose))

    def decide_each(self, bank_id: str, purpose: str, subjects: Sequence[str],
                    consents: Mapping[str, Sequence[Consent]], scores_today: Mapping[str, int],
                    now: datetime) -> list[Decision]:
        """`decide` for each subject, with its own consents and its count today (none and 0
        where absent): the same decisions, with `now` checked and the refusals, which every
        subject shares, made once for a batch of up to 10,000."""
        require_aware("now", now)
        refusals = self._refusals(purpose)
        none: tuple[Consent, ...] = ()
        return [self._decide(bank_id, s, purpose, consents.get(s, none), scores_today.get(s, 0),
                             now, refusals) for s in subjects]

    def _refusals(self, purpose: str) -> dict[str | None, Decision]:
        """Each step's refusal by dataset name, and the cap's under None."""
        refusals: dict[str | None, Decision] = {
            name: Decision.deny("query_not_allowed", f"the policy of dataset {name} forbids "
                                "scoring") if fields is None else
            Decision.deny("consent_required", f"no live consent from the subject covers the "
                          f"model's use of {name} for this bank and purpose {purpose}")
            for name, fields in self.steps}
        refusals[None] = Decision.deny("threshold_exceeded",
                                       f"at most {self.daily_limit} scores per subject per day")
        return refusals

    def _decide(self, bank_id: str, subject_uscc: str, purpose: str,
                consents: Iterable[Consent], scores_today: int, now: datetime,
                refusals: Mapping[str | None, Decision]) -> Decision:
        serving = [c for c in consents if c.serves(bank_id, subject_uscc, purpose, now)]
        used: list[str] = []
        for name, fields in self.steps:
            if fields is None:
                return refusals[name]
            before = len(used)
            for c in serving:  # a plain loop: run for up to 10,000 subjects × datasets
                if c.covers(name, fields):
                    used.append(c.id)
            if len(used) == before:
                return refusals[name]
        if self.daily_limit is not None and scores_today >= self.daily_limit:
            return refusals[None]
        return Decision.allow("consented" if used else "allowed", consent_ids=used)


def decide_score_subject(
    bank_id: str,
    subject_uscc: str,
    purpose: str,
    datasets: Mapping[str, DatasetPolicy | None],
    features: AbstractSet[str],
    consents: Iterable[Consent],
    scores_today: int,
    now: datetime,
) -> Decision:
    """May this subject be scored (a `null` score when denied)? Consent, then the daily limit.

    `features` are the model's `dataset.field` inputs; a consent limited to some fields must
    include every feature the model reads from that dataset. Several consents may combine.
    """
    return ScoringRules.of(datasets, features).decide(bank_id, subject_uscc, purpose, consents,
                                                      scores_today, now)


def decide_self_query(actor: Actor) -> Decision:
    """Subject rights: only an enterprise reads the records and access events naming itself."""
    if actor.role != "enterprise" or actor.uscc is None:
        return Decision.deny("role_not_allowed", "only an enterprise may read its own records")
    return Decision.allow()
