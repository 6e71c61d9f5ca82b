"""The operations added for issue 3 are gated to the roles api.md names."""

from __future__ import annotations

import pytest

from policies.errors import PolicyDenied
from policies.roles import ROLES, authorize_role

EXPECTED = {
    "consent.grant": {"enterprise"},
    "consent.list": {"enterprise", "bank"},
    "consent.revoke": {"enterprise"},
    "me.data": {"enterprise"},
    "me.access_log": {"enterprise"},
    "objection.file": {"enterprise"},
    "objection.resolve": {"department"},
    "agreement.end": {"admin"},
    "query": {"bank"},
    "verify": {"bank"},
    "job.submit": {"bank"},
    "job.review": {"department"},
    "model.score": {"bank"},
}


@pytest.mark.parametrize("operation", sorted(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_role_gate(operation, role):
    if role in EXPECTED[operation]:
        authorize_role(role, operation)
    else:
        with pytest.raises(PolicyDenied) as caught:
            authorize_role(role, operation)
        assert caught.value.code == "role_not_allowed"
