"""Builders and hypothesis strategies for policy tests: small worlds of banks, datasets, consents.

Names come from tiny pools so that random facts collide with random requests often.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from policies.documents import DatasetPolicy
from policies.facts import Actor, Agreement, ColumnFacts, Consent

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MICRO = timedelta(microseconds=1)

BANKS = ("bank_a", "bank_b")
SUBJECTS = ("91350100M000100Y43", "91110000100000589B")
DATASETS = ("tax", "social", "court")
PURPOSES = ("loan_application", "credit_modeling", "post_loan_monitoring", "credit_research")
FIELDS = ("annual_tax", "tax_arrears", "headcount")

COLUMNS = {
    "uscc": ColumnFacts("uscc", "string", "key"),
    "annual_tax": ColumnFacts("annual_tax", "int", "measure"),
    "tax_arrears": ColumnFacts("tax_arrears", "bool", "flag"),
    "headcount": ColumnFacts("headcount", "int", "measure"),
    "region": ColumnFacts("region", "string", "dimension"),
}

API_EXAMPLE: dict[str, Any] = {
    "aggregate": {"purposes": ["credit_research"], "functions": ["count", "sum", "avg"],
                  "min_group_size": 10, "epsilon_per_period": 3.0, "period": "month"},
    "verify": {"purposes": ["loan_application", "post_loan_monitoring"],
               "consent_required": True,
               "fields": {"annual_tax": [">=", "<="], "tax_arrears": ["="]},
               "max_distinct_values_per_consent": 3},
    "model": {"purposes": ["credit_modeling"], "custom_code_requires_review": True,
              "min_training_rows": 500, "scoring_consent_required": True},
}


def open_policy(sections: frozenset[str] = frozenset({"aggregate", "verify", "model"}),
                **extra: Any) -> DatasetPolicy:
    """A policy allowing every pool purpose, field and operator in the given sections."""
    everything = {
        "aggregate": {"purposes": list(PURPOSES), "functions": ["count", "sum", "avg"],
                      "epsilon_per_period": 3},
        "verify": {"purposes": list(PURPOSES),
                   "fields": {name: ["=", "!=", ">=", "<=", ">", "<"] for name in FIELDS}},
        "model": {"purposes": list(PURPOSES), "custom_code_requires_review": False},
    }
    document = {name: body for name, body in everything.items() if name in sections}
    return DatasetPolicy.model_validate({**document, **extra})


def agreement(bank: str = "bank_a", datasets: tuple[str, ...] = DATASETS,
              purposes: tuple[str, ...] = PURPOSES, *, valid_until: datetime = NOW + timedelta(1),
              ended_at: datetime | None = None, id: str = "agr_1") -> Agreement:
    return Agreement(id, bank, frozenset(datasets), frozenset(purposes), valid_until, ended_at)


def consent(bank: str = "bank_a", subject: str = SUBJECTS[0], purpose: str = "loan_application",
            datasets: tuple[str, ...] = DATASETS, fields: frozenset[str] | None = None, *,
            expires_at: datetime = NOW + timedelta(30), granted_at: datetime = NOW - timedelta(1),
            revoked_at: datetime | None = None, id: str = "con_1") -> Consent:
    return Consent(id, subject, bank, purpose, frozenset(datasets), fields, expires_at,
                   granted_at, revoked_at)


BANK = Actor("bank_a", "bank")

# Offsets around `now` that hit the boundary instants exactly, and either side of them.
offsets = st.one_of(
    st.sampled_from([timedelta(0), MICRO, -MICRO]),
    st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)),
)
ahead = st.sampled_from([MICRO, timedelta(days=1)])
# Weight towards the fitting case, so that allows are common enough to test the "iff".
FITS = ("none",) * 4
nows = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1),
                    timezones=st.just(UTC))


def subsets(pool: tuple[str, ...], min_size: int = 0) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(pool), min_size=min_size)


@st.composite
def agreements(draw: st.DrawFn, now: datetime) -> Agreement:
    ended = draw(st.none() | offsets)
    return Agreement(
        id=f"agr_{draw(st.integers(0, 99))}",
        bank_id=draw(st.sampled_from(BANKS)),
        datasets=draw(subsets(DATASETS)),
        purposes=draw(subsets(PURPOSES)),
        valid_until=now + draw(offsets),
        ended_at=None if ended is None else now + ended,
    )


@st.composite
def consents(draw: st.DrawFn, now: datetime) -> Consent:
    revoked = draw(st.none() | offsets)
    fields = draw(st.none() | st.frozensets(
        st.builds(lambda d, f: f"{d}.{f}", st.sampled_from(DATASETS), st.sampled_from(FIELDS))))
    return Consent(
        id=f"con_{draw(st.integers(0, 99))}",
        subject_uscc=draw(st.sampled_from(SUBJECTS)),
        grantee_bank_id=draw(st.sampled_from(BANKS)),
        purpose=draw(st.sampled_from(PURPOSES)),
        datasets=draw(subsets(DATASETS)),
        fields=fields,
        expires_at=now + draw(offsets),
        granted_at=now - draw(st.timedeltas(min_value=-MICRO, max_value=timedelta(days=3))),
        revoked_at=None if revoked is None else now + revoked,
    )


@st.composite
def near_agreements(draw: st.DrawFn, now: datetime, bank: str, datasets: frozenset[str],
                    purpose: str) -> Agreement:
    """An agreement that fits the request, or misses it in one random way."""
    fit = Agreement(f"agr_{draw(st.integers(0, 99))}", bank, datasets | draw(subsets(DATASETS)),
                    frozenset({purpose}) | draw(subsets(PURPOSES)), now + draw(ahead), None)
    miss = draw(st.sampled_from((*FITS, "bank", "dataset", "purpose", "ended", "expired")))
    if miss == "bank":
        return replace(fit, bank_id=draw(st.sampled_from(BANKS)))
    if miss == "dataset":
        return replace(fit, datasets=fit.datasets - {draw(st.sampled_from(sorted(datasets)))})
    if miss == "purpose":
        return replace(fit, purposes=fit.purposes - {purpose})
    if miss == "ended":
        return replace(fit, ended_at=now + draw(offsets))
    if miss == "expired":
        return replace(fit, valid_until=now + draw(offsets))
    return fit


@st.composite
def near_consents(draw: st.DrawFn, now: datetime, bank: str, subject: str, purpose: str,
                  dataset: str, field: str) -> Consent:
    """A consent that fits the check, or misses it in one random way."""
    fit = Consent(f"con_{draw(st.integers(0, 99))}", subject, bank, purpose,
                  frozenset({dataset}) | draw(subsets(DATASETS)),
                  draw(st.sampled_from([None, frozenset({f"{dataset}.{field}"})])),
                  expires_at=now + draw(ahead),
                  granted_at=now - draw(st.sampled_from([timedelta(0), timedelta(days=1)])))
    miss = draw(st.sampled_from((*FITS, "bank", "subject", "purpose", "dataset", "field",
                                 "revoked", "granted", "expired")))
    if miss == "bank":
        return replace(fit, grantee_bank_id=draw(st.sampled_from(BANKS)))
    if miss == "subject":
        return replace(fit, subject_uscc=draw(st.sampled_from(SUBJECTS)))
    if miss == "purpose":
        return replace(fit, purpose=draw(st.sampled_from(PURPOSES)))
    if miss == "dataset":
        return replace(fit, datasets=fit.datasets - {dataset})
    if miss == "field":
        return replace(fit, fields=draw(subsets(tuple(f"{d}.{f}" for d in DATASETS
                                                      for f in FIELDS))))
    if miss == "revoked":
        return replace(fit, revoked_at=now + draw(offsets))
    if miss == "granted":
        return replace(fit, granted_at=now + draw(offsets))
    if miss == "expired":
        return replace(fit, expires_at=now + draw(offsets))
    return fit
