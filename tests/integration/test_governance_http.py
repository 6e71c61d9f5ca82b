"""Agreements, dataset policies and consents over HTTP, with receipts verified offline.

One server for the module; each test adds the principals and grants it needs.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from audit.checkpoint import verify_signature
from tests.integration.conftest import Server
from tests.integration.world import TAX_POLICY, World, build_world, later


@pytest.fixture(scope="module")
def w(server: Server) -> World:
    return build_world(server)


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code, body
    return body


def locs(r: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in r.json()["error"]["detail"]["errors"]]


# -- agreements ------------------------------------------------------------------------------

def test_agreements_create_list_and_end(w: World):
    body = {"bank_id": w.bank["id"], "datasets": ["tax_annual"],
            "purposes": ["loan_application", "credit_research"], "valid_until": later(days=365)}
    with w.server.admin() as admin:
        r = admin.post("/v1/agreements", json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["status"] == "active" and made["ended_at"] is None
        assert made["purposes"] == ["credit_research", "loan_application"]
        other = admin.post("/v1/agreements", json={**body, "bank_id": w.other_bank["id"]}).json()
    with w.as_(w.bank) as c:
        mine = c.get("/v1/agreements").json()["agreements"]
    assert [a["id"] for a in mine] == [made["id"]]
    with w.as_(w.auditor) as c:
        seen = {a["id"] for a in c.get("/v1/agreements").json()["agreements"]}
    assert {made["id"], other["id"]} <= seen
    with w.server.admin() as admin:
        ended = admin.post(f"/v1/agreements/{other['id']}/end")
        assert ended.status_code == 200 and ended.json()["status"] == "ended"
        again = admin.post(f"/v1/agreements/{other['id']}/end").json()
        assert again["ended_at"] == ended.json()["ended_at"]
        error(admin.post("/v1/agreements/agr_nope/end"), 404, "not_found")


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"bank_id": "dep_x"}, ["body", "bank_id"]),
        ({"datasets": ["no_such_set"]}, ["body", "datasets", 0]),
        ({"datasets": ["bank_loans"]}, ["body", "datasets", 0]),  # private data is not shared
        ({"valid_until": "2030-01-01T00:00:00"}, ["body", "valid_until"]),  # naive
        ({"valid_until": 1900000000}, ["body", "valid_until"]),
        ({"valid_until": "2001-01-01T00:00:00Z"}, ["body", "valid_until"]),  # past
        ({"purposes": ["Loan Application"]}, ["body", "purposes", 0]),
        ({"purposes": ["a", "a"]}, ["body", "purposes"]),
        ({"extra": 1}, ["body", "extra"]),
    ],
)
def test_agreement_validation_names_the_field(w: World, change, loc):
    body = {"bank_id": w.bank["id"], "datasets": ["tax_annual"], "purposes": ["loan_application"],
            "valid_until": later(days=30), **change}
    with w.server.admin() as admin:
        r = admin.post("/v1/agreements", json=body)
    error(r, 422, "invalid_request")
    assert loc in locs(r)


def test_only_admin_creates_or_ends_agreements(w: World):
    for who in (w.bank, w.dept, w.ent, w.auditor):
        with w.as_(who) as c:
            error(c.post("/v1/agreements", json={}), 403, "role_not_allowed")
            error(c.post("/v1/agreements/x/end"), 403, "role_not_allowed")


# -- dataset policies ------------------------------------------------------------------------

def test_policy_is_stored_with_defaults_and_shown(w: World):
    url = f"/v1/datasets/{w.tax['id']}/policy"
    with w.as_(w.auditor) as c:
        got = c.get(url).json()
        described = c.get(f"/v1/datasets/{w.tax['id']}").json()
    assert got["dataset"] == "tax_annual"
    assert got["policy"]["verify"]["fields"] == TAX_POLICY["verify"]["fields"]
    assert got["policy"]["model"]["max_scores_per_subject_per_day"] == 3  # default written out
    assert described["policy"] == got["policy"]
    with w.as_(w.ent) as c:
        error(c.get(url), 403, "role_not_allowed")


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({"verify": {**TAX_POLICY["verify"], "fields": {"nope": ["="]}}},
         ["body", "verify", "fields", "nope"]),
        ({"verify": {**TAX_POLICY["verify"], "fields": {"region": [">="]}}},
         ["body", "verify", "fields", "region"]),
        ({"verify": {**TAX_POLICY["verify"], "fields": {"uscc": ["="]}}},
         ["body", "verify", "fields", "uscc"]),
        ({"aggregate": {**TAX_POLICY["aggregate"], "epsilon_per_period": "SECRET-4711"}},
         ["body", "aggregate", "epsilon_per_period"]),
        ({"aggregate": {**TAX_POLICY["aggregate"], "epsilon_per_period": -1}},
         ["body", "aggregate", "epsilon_per_period"]),
        ({"model": {"purposes": ["credit_modeling"], "surprise": "SECRET-4711"}},
         ["body", "model", "surprise"]),
        ({"max_consent_days": 100000}, ["body", "max_consent_days"]),
        (["SECRET-4711"], ["body"]),
    ],
)
def test_invalid_policies_are_422_naming_the_path_never_the_value(w: World, document, loc):
    with w.as_(w.dept) as c:
        r = c.put(f"/v1/datasets/{w.tax['id']}/policy", json=document)
        after = c.get(f"/v1/datasets/{w.tax['id']}/policy").json()["policy"]
    error(r, 422, "invalid_request")
    assert loc in locs(r)
    assert "SECRET-4711" not in r.text
    assert after["max_consent_days"] == TAX_POLICY["max_consent_days"]  # unchanged


def test_only_the_owner_puts_a_policy(w: World):
    url = f"/v1/datasets/{w.tax['id']}/policy"
    for who in (w.other_dept, w.bank):
        with w.as_(who) as c:
            error(c.put(url, json=TAX_POLICY), 403, "role_not_allowed")
    with w.as_(w.other_bank) as c:  # another bank's private dataset does not exist for it
        r = c.put(f"/v1/datasets/{w.loans['id']}/policy", json={})
        absent = c.put("/v1/datasets/ds_0000000000000000/policy", json={})
    error(r, 404, "not_found")
    assert r.json() == absent.json()
    with w.as_(w.bank) as c:  # the owning bank may
        r = c.put(f"/v1/datasets/{w.loans['id']}/policy",
                  json={"model": {"purposes": ["credit_modeling"]}})
    assert r.status_code == 200, r.text


# -- consents --------------------------------------------------------------------------------

def grant(w: World, who: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    with w.as_(who or w.ent) as c:
        r = c.post("/v1/consents", json=w.consent_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()


def public_key(w: World) -> str:
    keys = httpx.get(w.server.url + "/v1/keys").json()["keys"]
    return str(keys[0]["public_key"])


def test_receipt_verifies_offline_and_fails_after_any_byte_changes(w: World):
    made = grant(w, fields=["annual_tax"])
    assert made["status"] == "active"
    assert made["notices"] == {"tax_annual": TAX_POLICY["consent_notice"]}
    payload, signature = made["receipt"]["payload"], made["receipt"]["signature"]
    key = public_key(w)
    message = payload.encode()
    assert verify_signature(key, message, signature)
    claims = json.loads(payload)
    assert claims["id"] == made["id"] and claims["subject"] == w.ent["uscc"]
    assert claims["grantee"] == w.bank["id"] and claims["fields"] == ["tax_annual.annual_tax"]
    assert claims["notices_digest"] == made["notices_digest"]
    for i in range(len(message)):
        changed = bytearray(message)
        changed[i] ^= 0x01
        assert not verify_signature(key, bytes(changed), signature), i
    raw = bytes.fromhex(signature)
    for i in range(len(raw)):
        changed = bytearray(raw)
        changed[i] ^= 0x01
        assert not verify_signature(key, message, changed.hex()), i


def test_notices_are_readable_before_granting(w: World):
    with w.as_(w.ent) as c:
        r = c.get("/v1/consents/notices",
                  params={"datasets": ["tax_annual"], "grantee": w.bank["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["notices"] == {"tax_annual": TAX_POLICY["consent_notice"]}
    assert r.json()["notices_digest"] == grant(w)["notices_digest"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"acknowledge_risks": False}, 422, "invalid_request"),
        ({"acknowledge_risks": "true"}, 422, "invalid_request"),
        ({"expires_at": later(days=91)}, 403, "query_not_allowed"),  # policy max is 90 days
        ({"expires_at": later(days=-1)}, 403, "query_not_allowed"),
        ({"expires_at": "2030-01-01T00:00:00"}, 422, "invalid_request"),  # naive
        ({"purpose": "credit_research"}, 403, "purpose_not_allowed"),  # aggregates need no consent
        ({"fields": ["tax_annual.nope"]}, 403, "column_not_allowed"),
        ({"fields": ["other.annual_tax"]}, 422, "invalid_request"),
        ({"grantee": "dep_0000"}, 422, "invalid_request"),
        ({"datasets": []}, 422, "invalid_request"),
        ({"scope": "all"}, 422, "invalid_request"),
    ],
)
def test_refused_grants(w: World, change, status, code):
    with w.as_(w.ent) as c:
        r = c.post("/v1/consents", json=w.consent_body(**change))
    error(r, status, code)


def test_another_banks_private_dataset_is_not_consentable(w: World):
    with w.as_(w.ent) as c:
        r = c.post("/v1/consents", json=w.consent_body(grantee=w.other_bank["id"],
                                                       datasets=["bank_loans"]))
    error(r, 403, "query_not_allowed")
    assert "not registered" in r.json()["error"]["message"]


def test_bank_sees_only_its_consents_with_scope_and_status(w: World):
    made = grant(w, who=w.ent2)
    with w.as_(w.bank) as c:
        listed = {x["id"]: x for x in c.get("/v1/consents").json()["consents"]}
    assert set(listed[made["id"]]) == {"id", "subject", "purpose", "datasets", "fields",
                                       "expires_at", "status"}
    assert listed[made["id"]]["subject"] == w.ent2["uscc"]
    with w.as_(w.other_bank) as c:
        assert made["id"] not in {x["id"] for x in c.get("/v1/consents").json()["consents"]}
    with w.as_(w.ent) as c:
        assert made["id"] not in {x["id"] for x in c.get("/v1/consents").json()["consents"]}


def test_revoke_binds_and_only_the_grantor_may(w: World):
    made = grant(w)
    url = f"/v1/consents/{made['id']}"
    with w.as_(w.ent2) as c:
        theirs = c.delete(url)
        absent = c.delete("/v1/consents/con_0000000000000000")
    error(theirs, 404, "not_found")
    assert theirs.json() == absent.json()
    with w.as_(w.bank) as c:
        error(c.delete(url), 403, "role_not_allowed")
    with w.as_(w.ent) as c:
        r = c.delete(url)
        assert r.status_code == 200 and r.json()["status"] == "revoked"
        assert c.delete(url).json()["revoked_at"] == r.json()["revoked_at"]
        mine = {x["id"]: x for x in c.get("/v1/consents").json()["consents"]}
    assert mine[made["id"]]["status"] == "revoked"
    with w.as_(w.bank) as c:
        listed = {x["id"]: x for x in c.get("/v1/consents", params={"limit": 1000})
                  .json()["consents"]}
    assert listed[made["id"]]["status"] == "revoked"


def test_consent_list_pages(w: World):
    for _ in range(3):
        grant(w, who=w.stranger)
    seen: list[str] = []
    cursor = 0
    with w.as_(w.stranger) as c:
        while cursor is not None:
            page = c.get("/v1/consents", params={"limit": 2, "cursor": cursor}).json()
            seen += [x["id"] for x in page["consents"]]
            cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 3


def test_access_log_shows_own_consent_events_and_no_other_subject(w: World):
    mine, theirs = grant(w), grant(w, who=w.ent2)
    with w.as_(w.bank) as c:  # one event naming both enterprises
        assert c.get("/v1/consents", params={"limit": 1000}).status_code == 200
    with w.as_(w.ent) as c:
        assert c.delete(f"/v1/consents/{mine['id']}").status_code == 200
        log = c.get("/v1/me/access-log", params={"limit": 1000})
    assert log.status_code == 200, log.text
    events = log.json()["events"]
    text = log.text
    assert w.ent2["uscc"] not in text and theirs["id"] not in text
    actions = [(e["action"], e["resource"]) for e in events]
    assert ("consent.grant", mine["id"]) in actions and ("consent.revoke", mine["id"]) in actions
    listing = [e for e in events if e["action"] == "consent.list" and e["actor"]["id"] == w.bank["id"]]
    assert listing, events
    assert listing[-1]["actor"]["name"] == w.bank["name"] and listing[-1]["actor"]["role"] == "bank"
    assert "hash" not in listing[-1] and "digest" not in listing[-1]
    grant_event = next(e for e in events if e["resource"] == mine["id"])
    assert grant_event["purpose"] == "loan_application" and grant_event["decision"] == "allow"
    assert "subjects" not in grant_event


def test_a_refused_grant_is_in_the_subjects_access_log(w: World):
    with w.as_(w.stranger) as c:
        error(c.post("/v1/consents", json=w.consent_body(expires_at=later(days=400))),
              403, "query_not_allowed")
        events = c.get("/v1/me/access-log", params={"limit": 1000}).json()["events"]
    denied = [e for e in events if e["action"] == "consent.grant" and e["decision"] == "deny"]
    assert denied and denied[-1]["reason"] == "query_not_allowed"
