"""Consent grants: the request shape, the grant decision, notices and the receipt payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from policies.consent import (
    DEFAULT_CONSENT_NOTICE,
    ConsentRequest,
    consent_notices,
    decide_consent_grant,
    notices_digest,
    receipt_payload,
)
from policies.decisions import Decision
from policies.documents import parse_policy
from tests.policies.worlds import API_EXAMPLE, COLUMNS, MICRO, NOW, SUBJECTS, consent

TAX = parse_policy({**API_EXAMPLE, "consent_notice": "税务数据风险提示", "max_consent_days": 90},
                   COLUMNS)
SOCIAL = parse_policy(API_EXAMPLE, COLUMNS)
POLICIES = {"tax": TAX, "social": SOCIAL, "unset": None}
SCHEMAS = {"tax": COLUMNS, "social": COLUMNS, "unset": COLUMNS}


def body(**overrides: Any) -> dict[str, Any]:
    return {"grantee": "bank_a", "purpose": "loan_application", "datasets": ["tax"],
            "expires_at": "2026-04-01T00:00:00+08:00", "acknowledge_risks": True, **overrides}


def grant(now: datetime = NOW, **overrides: Any) -> Decision:
    request = ConsentRequest.model_validate(body(**overrides))
    return decide_consent_grant(request, POLICIES, now, columns=SCHEMAS)


def error_locs(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        ConsentRequest.model_validate(document)
    return [error["loc"] for error in caught.value.errors()]


def test_a_valid_request_parses():
    request = ConsentRequest.model_validate(body(fields=["annual_tax"]))
    assert request.expires_at == datetime(2026, 3, 31, 16, tzinfo=UTC)
    assert request.scope_fields() == frozenset({"tax.annual_tax"})
    assert ConsentRequest.model_validate(body()).scope_fields() is None


@pytest.mark.parametrize("acknowledge", [False, None, 1, "true"])
def test_risks_must_be_acknowledged_with_true(acknowledge):
    assert ("acknowledge_risks",) in error_locs(body(acknowledge_risks=acknowledge))


def test_acknowledgement_is_required():
    document = body()
    del document["acknowledge_risks"]
    assert ("acknowledge_risks",) in error_locs(document)


@pytest.mark.parametrize(("overrides", "loc"), [
    ({"datasets": []}, ("datasets",)),
    ({"datasets": ["tax", "tax"]}, ("datasets",)),
    ({"datasets": ["Tax"]}, ("datasets", 0)),
    ({"expires_at": "2026-04-01T00:00:00"}, ("expires_at",)),
    ({"expires_at": 1775000000}, ("expires_at",)),
    ({"expires_at": "1775000000"}, ("expires_at",)),
    ({"grantee": ""}, ("grantee",)),
    ({"grantee": 7}, ("grantee",)),
    ({"purpose": "Loan"}, ("purpose",)),
    ({"fields": []}, ("fields",)),
    ({"extra": 1}, ("extra",)),
])
def test_bad_requests_name_the_field(overrides, loc):
    assert loc in error_locs(body(**overrides))


@pytest.mark.parametrize("fields", [
    ["annual_tax"],                     # bare, but two datasets: ambiguous
    ["court.annual_tax"],               # a dataset the consent does not list
    ["tax.annual_tax"],                 # leaves social with no field at all
    ["tax.Annual"],
])
def test_field_references_must_be_unambiguous_and_in_scope(fields):
    assert error_locs(body(datasets=["tax", "social"], fields=fields))


def test_grant_allowed_within_the_strictest_maximum():
    expiry = NOW + timedelta(days=90)
    assert grant(datasets=["tax", "social"], expires_at=expiry.isoformat()).allowed
    decision = grant(datasets=["tax", "social"], expires_at=(expiry + MICRO).isoformat())
    assert (decision.allowed, decision.code) == (False, "query_not_allowed")
    assert "90 days" in decision.reason


@pytest.mark.parametrize(("overrides", "code"), [
    ({"datasets": ["court"]}, "query_not_allowed"),
    ({"datasets": ["unset"]}, "purpose_not_allowed"),
    ({"purpose": "credit_research"}, "purpose_not_allowed"),  # aggregates need no consent
    ({"purpose": "marketing"}, "purpose_not_allowed"),
    ({"fields": ["turnover"]}, "column_not_allowed"),
    ({"fields": ["uscc"]}, "column_not_allowed"),
    ({"expires_at": NOW.isoformat()}, "query_not_allowed"),
])
def test_grant_denials(overrides, code):
    decision = grant(**overrides)
    assert (decision.allowed, decision.code) == (False, code)


def test_model_purposes_are_consentable():
    assert grant(purpose="credit_modeling").allowed


def test_notices_fall_back_to_the_default_and_bind_the_digest():
    notices = consent_notices(["social", "tax"], POLICIES)
    assert notices == {"social": DEFAULT_CONSENT_NOTICE, "tax": "税务数据风险提示"}
    digest = notices_digest(notices)
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert notices_digest({**notices, "tax": "changed"}) != digest


def test_to_consent_and_receipt_payload_are_canonical():
    request = ConsentRequest.model_validate(body(fields=["annual_tax"]))
    granted = request.to_consent(consent_id="con_9", subject_uscc=SUBJECTS[0], granted_at=NOW,
                                 notices_digest="sha256:00")
    payload = receipt_payload(granted)
    assert b", " not in payload
    assert b": " not in payload
    decoded = json.loads(payload.decode("utf-8"))
    assert list(decoded) == sorted(decoded)
    assert decoded == {
        "type": "saferoom.consent.v1", "id": "con_9", "subject": SUBJECTS[0],
        "grantee": "bank_a", "purpose": "loan_application", "datasets": ["tax"],
        "fields": ["tax.annual_tax"], "granted_at": "2026-03-01T12:00:00.000000Z",
        "expires_at": "2026-03-31T16:00:00.000000Z", "notices_digest": "sha256:00",
    }


@given(offset_hours=st.integers(-12, 14))
def test_property_receipt_is_the_same_in_every_timezone(offset_hours):
    zone = timezone(timedelta(hours=offset_hours))
    base = consent()
    shifted = consent(expires_at=base.expires_at.astimezone(zone),
                      granted_at=base.granted_at.astimezone(zone))
    assert receipt_payload(shifted) == receipt_payload(base)


def test_receipt_changes_with_every_scope_element():
    base = receipt_payload(consent())
    for changed in (consent("bank_b"), consent(subject=SUBJECTS[1]),
                    consent(purpose="credit_modeling"), consent(datasets=("tax",)),
                    consent(fields=frozenset({"tax.annual_tax"})),
                    consent(expires_at=NOW + timedelta(days=30, microseconds=1)),
                    consent(id="con_2")):
        assert receipt_payload(changed) != base
