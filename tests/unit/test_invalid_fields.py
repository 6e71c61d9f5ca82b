"""Field errors found after parsing answer 422 `invalid_request` like schema errors, valueless.

Covers the service's `InvalidFields` and the consent request's messages about its fields.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from policies.consent import ConsentRequest
from saferoom import errors as e


def test_invalid_fields_is_a_422_with_the_schema_error_shape():
    exc = e.InvalidFields.of([(["body", "bank_id"], "no bank has this id")])
    assert (e.status_for(exc), e.code_for(exc)) == (422, "invalid_request")
    assert exc.detail == {"errors": [{"loc": ["body", "bank_id"], "msg": "no bank has this id",
                                      "type": "value_error"}]}
    assert e.status_for(e.InvalidRequest("x")) == 400  # the parent keeps its own status


def test_a_malformed_consent_field_is_not_echoed():
    with pytest.raises(ValidationError) as caught:
        ConsentRequest.model_validate({
            "grantee": "b", "purpose": "loan_application", "datasets": ["tax", "social"],
            "fields": ["SECRET 4711"], "expires_at": "2030-01-01T00:00:00Z",
            "acknowledge_risks": True})
    assert "SECRET" not in str(caught.value.errors(include_input=False))
