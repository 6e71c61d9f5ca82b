"""Bad input and abuse on every governance endpoint: the api.md status and code, never a 500.

Unknown fields, wrong types, oversized bodies, wrong roles, missing tokens, other tenants' ids.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Server
from tests.integration.world import World, build_world

HUGE = b'{"claim": "' + b"x" * (9 * 1024 * 1024) + b'"}'  # past the 8 MiB JSON limit


@pytest.fixture(scope="module")
def w(server: Server) -> World:
    return build_world(server)


@pytest.fixture(scope="module")
def ids(w: World) -> dict[str, str]:
    """Ids that exist, for the cases that use someone else's."""
    with w.as_(w.ent) as c:
        consent = c.post("/v1/consents", json=w.consent_body()).json()
        objection = c.post("/v1/objections", json={"dataset": "tax_annual",
                                                   "field": "annual_tax", "claim": "wrong"}).json()
    return {"tax": w.tax["id"], "loans": w.loans["id"], "consent": consent["id"],
            "objection": objection["id"]}


# (who, method, path, body, status, code); body is JSON, or bytes sent as application/json.
CASES: list[tuple[str, str, str, Any, int, str]] = [
    # agreements
    ("admin", "POST", "/v1/agreements", {"bank_id": "b", "datasets": ["tax_annual"],
     "purposes": ["p"], "valid_until": "2099-01-01T00:00:00Z", "x": 1}, 422, "invalid_request"),
    ("admin", "POST", "/v1/agreements", {"bank_id": 5, "datasets": "tax_annual",
     "purposes": [1], "valid_until": True}, 422, "invalid_request"),
    ("admin", "POST", "/v1/agreements", HUGE, 413, "payload_too_large"),
    ("admin", "POST", "/v1/agreements", b"{not json", 422, "invalid_request"),
    ("bank", "POST", "/v1/agreements", {}, 403, "role_not_allowed"),
    ("ent", "GET", "/v1/agreements", None, 403, "role_not_allowed"),
    ("dept", "POST", "/v1/agreements/agr_x/end", None, 403, "role_not_allowed"),
    ("none", "GET", "/v1/agreements", None, 401, "unauthenticated"),
    # dataset policies
    ("dept", "PUT", "/v1/datasets/{tax}/policy", {"verify": {"x": 1}}, 422, "invalid_request"),
    ("dept", "PUT", "/v1/datasets/{tax}/policy", {"max_consent_days": "90"}, 422,
     "invalid_request"),
    ("dept", "PUT", "/v1/datasets/{tax}/policy", HUGE, 413, "payload_too_large"),
    ("dept", "PUT", "/v1/datasets/{tax}/policy", b"[[[[[[", 422, "invalid_request"),
    ("ent", "PUT", "/v1/datasets/{tax}/policy", {}, 403, "role_not_allowed"),
    ("ent", "GET", "/v1/datasets/{tax}/policy", None, 403, "role_not_allowed"),
    ("other_bank", "GET", "/v1/datasets/{loans}/policy", None, 404, "not_found"),
    ("dept", "GET", "/v1/datasets/" + "z" * 5000 + "/policy", None, 404, "not_found"),
    # consents
    ("ent", "POST", "/v1/consents", {"grantee": "b", "purpose": "loan_application",
     "datasets": ["tax_annual"], "expires_at": "2099-01-01T00:00:00Z",
     "acknowledge_risks": True, "scope": "*"}, 422, "invalid_request"),
    ("ent", "POST", "/v1/consents", {"grantee": ["b"], "purpose": 7, "datasets": "tax_annual",
     "expires_at": 1, "acknowledge_risks": 1}, 422, "invalid_request"),
    ("ent", "POST", "/v1/consents", HUGE, 413, "payload_too_large"),
    ("ent", "POST", "/v1/consents", [1, 2], 422, "invalid_request"),
    ("bank", "POST", "/v1/consents", {}, 403, "role_not_allowed"),
    ("auditor", "GET", "/v1/consents", None, 403, "role_not_allowed"),
    ("ent", "GET", "/v1/consents?limit=0", None, 422, "invalid_request"),
    ("ent", "GET", "/v1/consents?limit=99999", None, 422, "invalid_request"),
    ("ent", "GET", "/v1/consents?cursor=abc", None, 422, "invalid_request"),
    ("ent", "GET", "/v1/consents/notices", None, 422, "invalid_request"),
    ("ent", "GET", "/v1/consents/notices?grantee=b&datasets=Bad-Name", None, 422,
     "invalid_request"),
    ("bank", "GET", "/v1/consents/notices?grantee=b&datasets=tax_annual", None, 403,
     "role_not_allowed"),
    ("dept", "DELETE", "/v1/consents/{consent}", None, 403, "role_not_allowed"),
    ("ent2", "DELETE", "/v1/consents/{consent}", None, 404, "not_found"),
    ("ent2", "DELETE", "/v1/consents/..%2F..%2Fetc", None, 404, "not_found"),
    # subject rights
    ("admin", "GET", "/v1/me/data", None, 403, "role_not_allowed"),
    ("bank", "GET", "/v1/me/access-log", None, 403, "role_not_allowed"),
    ("ent", "GET", "/v1/me/access-log?cursor=-1", None, 422, "invalid_request"),
    ("none", "GET", "/v1/me/data", None, 401, "unauthenticated"),
    # objections
    ("ent", "POST", "/v1/objections", {"dataset": "tax_annual", "field": "annual_tax",
     "claim": "c", "value": 1}, 422, "invalid_request"),
    ("ent", "POST", "/v1/objections", {"dataset": "tax_annual", "field": "annual_tax",
     "claim": 5}, 422, "invalid_request"),
    ("ent", "POST", "/v1/objections", {"dataset": "tax_annual", "field": "annual_tax",
     "claim": "x" * 2001}, 422, "invalid_request"),
    ("ent", "POST", "/v1/objections", {"dataset": "tax_annual", "field": "annual_tax",
     "claim": "   "}, 422, "invalid_request"),
    ("ent", "POST", "/v1/objections", HUGE, 413, "payload_too_large"),
    ("bank", "POST", "/v1/objections", {}, 403, "role_not_allowed"),
    ("bank", "GET", "/v1/objections", None, 403, "role_not_allowed"),
    ("dept", "POST", "/v1/objections/{objection}/resolution", {"decision": "maybe"}, 422,
     "invalid_request"),
    ("dept", "POST", "/v1/objections/{objection}/resolution", {"decision": "upheld",
     "corrected_value": [1]}, 422, "invalid_request"),
    ("dept", "POST", "/v1/objections/{objection}/resolution", {"decision": "rejected",
     "reason": "r", "corrected_value": 1}, 422, "invalid_request"),
    ("dept", "POST", "/v1/objections/{objection}/resolution", {"decision": "upheld",
     "why": "r"}, 422, "invalid_request"),
    ("ent", "POST", "/v1/objections/{objection}/resolution", {"decision": "upheld"}, 403,
     "role_not_allowed"),
    ("other_dept", "POST", "/v1/objections/{objection}/resolution", {"decision": "upheld"},
     404, "not_found"),
]


def _id(case: tuple[str, str, str, Any, int, str]) -> str:
    who, method, path, _, status, _ = case
    return f"{who}-{method}-{path[:40]}-{status}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_abuse(w: World, ids: dict[str, str], case):
    who, method, path, body, status, code = case
    url = path.format(**ids)
    token = None if who == "none" else (
        w.server.admin_token if who == "admin" else getattr(w, who)["token"])
    headers = {"Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else (None if body is None else json.dumps(body))
    with w.server.client(token) as c:
        r = c.request(method, url, content=content, headers=headers)
    assert r.status_code == status, r.text[:500]
    assert r.json()["error"]["code"] == code


def test_no_request_was_a_500(w: World, server: Server):
    assert "unhandled" not in server.log()
