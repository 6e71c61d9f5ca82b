"""One error table: each error type maps to one status and a stable code; messages stay public."""

from __future__ import annotations

import pytest

from audit.errors import AuditCorrupted, AuditWriteError
from policies.errors import PolicyDenied
from saferoom import errors as e


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (e.InvalidRequest("x"), 400, "invalid_request"),
        (e.Unauthenticated("x"), 401, "unauthenticated"),
        (PolicyDenied("consent_required", "x"), 403, "consent_required"),
        (PolicyDenied("budget_exhausted", "x"), 403, "budget_exhausted"),
        (e.NotFound("x"), 404, "not_found"),
        (e.Conflict("x"), 409, "conflict"),
        (e.PayloadTooLarge("x"), 413, "payload_too_large"),
        (e.UnsupportedMediaType("x"), 415, "unsupported_media_type"),
        (e.InvalidData("x"), 422, "invalid_data"),
        (AuditWriteError(), 503, "audit_unavailable"),
        (AuditCorrupted(), 503, "audit_corrupted"),
        (ValueError("secret value 123"), 500, "internal_error"),
    ],
)
def test_status_and_code(exc: Exception, status: int, code: str) -> None:
    assert e.status_for(exc) == status
    assert e.code_for(exc) == code


def test_foreign_messages_are_never_public() -> None:
    assert e.public_message(ValueError("uscc 91410300MA123 has tax 5")) == "internal error"
    assert "audit" in e.public_message(AuditWriteError("disk full at /secret"))
    assert e.public_message(PolicyDenied("consent_required", "no consent")) == "no consent"
