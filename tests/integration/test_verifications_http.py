"""Verification over HTTP: answers against the data, consent boundaries, the extraction limit
(also under concurrency), bad input refused whole, and one audit event per subject."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import start_server
from tests.integration.helpers import (
    TAX_SPEC,
    agree,
    codes,
    consent,
    refused_batches,
    tax_csv,
)

CSV = {"Content-Type": "text/csv"}
PURPOSE = "loan_application"
POLICY = {
    "verify": {"purposes": [PURPOSE, "post_loan_monitoring"], "consent_required": True,
               "fields": {"annual_tax": [">=", "<="], "tax_arrears": ["="], "region": ["="]},
               "max_distinct_values_per_consent": 3},
    "consent_notice": "银行可核验您的纳税额与欠税情况。",
}
REGISTRY_SPEC = {
    "name": "registry", "key": "uscc",
    "columns": [{"name": "uscc", "type": "string", "role": "key"},
                {"name": "capital", "type": "int", "role": "measure", "bounds": [0, 10**9]}],
}
REGISTRY_POLICY = {"verify": {"purposes": [PURPOSE], "consent_required": False,
                              "fields": {"capital": [">="]}}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("v") / "data")
    keys = codes(40, seed=21)
    dept = server.new_principal("department", "税务局")
    bank = server.new_principal("bank", "洛阳银行")
    with server.client(dept["token"]) as c:
        tax = c.post("/v1/datasets", json=TAX_SPEC).json()
        assert c.put(f"/v1/datasets/{tax['id']}/data", content=tax_csv(keys[:30]),
                     headers=CSV).status_code == 200
        assert c.put(f"/v1/datasets/{tax['id']}/policy", json=POLICY).status_code == 200
        reg = c.post("/v1/datasets", json=REGISTRY_SPEC).json()
        body = "uscc,capital\n" + "".join(f"{k},{i * 100}\n" for i, k in enumerate(keys[:30]))
        assert c.put(f"/v1/datasets/{reg['id']}/data", content=body, headers=CSV).is_success
        assert c.put(f"/v1/datasets/{reg['id']}/policy", json=REGISTRY_POLICY).is_success
    agree(server, bank["id"], ["tax_annual", "registry"], [PURPOSE, "post_loan_monitoring"])
    firms = {}
    for i in (0, 1, 2, 3, 4, 30, 31, 32, 33, 34, 35):
        firms[i] = server.new_principal("enterprise", f"firm {i}", keys[i])
    consents = {i: consent(server, firms[i], bank["id"], PURPOSE, ["tax_annual"])
                for i in (0, 1, 2, 4, 30, 31, 32, 33, 34, 35)}
    yield server, bank, keys, firms, consents
    server.stop()


def _verify(server, bank, subjects, checks, purpose=PURPOSE):
    with server.client(bank["token"]) as c:
        return c.post("/v1/verifications",
                      json={"purpose": purpose, "subjects": subjects, "checks": checks})


def test_answers_follow_the_data_and_consent(world):
    server, bank, keys, _, _ = world
    checks = [{"dataset": "tax_annual", "field": "annual_tax", "op": ">=", "value": 1001},
              {"dataset": "tax_annual", "field": "tax_arrears", "op": "=", "value": False}]
    r = _verify(server, bank, [keys[0], keys[1], keys[2], keys[3], keys[30]], checks)
    assert r.status_code == 200, r.text
    got = {(x["uscc"], x["check"]): (x["answer"], x.get("reason")) for x in r.json()["results"]}
    # tax_csv: annual_tax = 1000 + i, arrears when i % 7 == 0
    assert got[(keys[0], 0)] == (False, None) and got[(keys[0], 1)] == (False, None)
    assert got[(keys[1], 0)] == (True, None) and got[(keys[1], 1)] == (True, None)
    assert got[(keys[2], 0)] == (True, None)
    assert got[(keys[3], 0)] == (None, "consent_required")  # registered, never consented
    assert got[(keys[30], 0)] == (None, "no_record")  # consented, but no tax record


def test_no_consent_needed_where_the_policy_says_so(world):
    server, bank, keys, _, _ = world
    r = _verify(server, bank, [keys[5], keys[6]],
                [{"dataset": "registry", "field": "capital", "op": ">=", "value": 550}])
    assert [x["answer"] for x in r.json()["results"]] == [False, True]


def test_fields_outside_the_policy_are_null_per_check(world):
    server, bank, keys, _, _ = world
    r = _verify(server, bank, [keys[1]],
                [{"dataset": "tax_annual", "field": "annual_tax", "op": "<=", "value": 5000},
                 {"dataset": "tax_annual", "field": "uscc", "op": "=", "value": keys[1]}])
    assert r.status_code == 200, r.text
    assert [(x["answer"], x.get("reason")) for x in r.json()["results"]] == [
        (True, None), (None, "column_not_allowed")]


def test_extraction_limit_binary_search_is_cut_off(world):
    server, bank, keys, _, _ = world
    answered = []
    for value in (1000, 5000, 2000, 1500, 1200, 5000):
        r = _verify(server, bank, [keys[4]],
                    [{"dataset": "tax_annual", "field": "annual_tax", "op": ">=", "value": value}])
        answered.append((r.json()["results"][0]["answer"], r.json()["results"][0].get("reason")))
    assert [a[0] is not None for a in answered] == [True, True, True, False, False, True]
    assert answered[3][1] == "threshold_exceeded"


def test_extraction_limit_holds_under_concurrency(world):
    server, bank, keys, _, _ = world

    def ask(value: int):
        r = _verify(server, bank, [keys[31]],
                    [{"dataset": "tax_annual", "field": "annual_tax", "op": "<=", "value": value}])
        return r.json()["results"][0].get("reason")

    with ThreadPoolExecutor(max_workers=12) as pool:
        reasons = list(pool.map(ask, range(100, 112)))
    # keys[31] has no tax record: answered cells say no_record, the rest are cut off.
    assert reasons.count("no_record") == 3
    assert reasons.count("threshold_exceeded") == 9


def test_revocation_binds_the_next_request(world):
    server, bank, keys, firms, consents = world
    check = [{"dataset": "tax_annual", "field": "tax_arrears", "op": "=", "value": True}]
    assert _verify(server, bank, [keys[1]], check).json()["results"][0]["answer"] is False
    with server.client(firms[1]["token"]) as c:
        assert c.delete(f"/v1/consents/{consents[1]}").status_code == 200
    after = _verify(server, bank, [keys[1]], check).json()["results"][0]
    assert (after["answer"], after["reason"]) == (None, "consent_required")


@pytest.mark.parametrize(("mutate", "status", "code"), refused_batches("checks", 10_000))
def test_bad_input_answers_nothing(world, mutate, status, code):
    server, bank, keys, _, _ = world
    body = {"purpose": PURPOSE, "subjects": [keys[0]],
            "checks": [{"dataset": "tax_annual", "field": "annual_tax", "op": ">=", "value": 1}]}
    mutate(body, keys)
    with server.client(bank["token"]) as c:
        r = c.post("/v1/verifications", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert "results" not in r.text


def test_roles_and_agreements(world):
    server, _, keys, firms, _ = world
    other_bank = server.new_principal("bank")
    check = [{"dataset": "tax_annual", "field": "annual_tax", "op": ">=", "value": 1}]
    assert _verify(server, other_bank, [keys[0]], check).json()["error"]["code"] == "no_agreement"
    assert _verify(server, firms[0], [keys[0]], check).json()["error"]["code"] == (
        "role_not_allowed")


def test_each_subject_finds_the_check_in_its_access_log(world):
    server, bank, keys, firms, _ = world
    r = _verify(server, bank, [keys[0], keys[2]],
                [{"dataset": "tax_annual", "field": "annual_tax", "op": ">=", "value": 1000}])
    assert r.status_code == 200
    with server.client(firms[0]["token"]) as c:
        log = c.get("/v1/me/access-log", params={"limit": 1000}).json()["events"]
    verifies = [e for e in log if e["action"] == "verify"]
    assert verifies and verifies[-1]["actor"]["id"] == bank["id"]
    assert verifies[-1]["purpose"] == PURPOSE and verifies[-1]["decision"] == "allow"
    assert keys[2] not in str(log)
