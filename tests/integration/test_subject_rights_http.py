"""Subject rights over HTTP: the records held about the caller, and objections to them.

An upheld objection writes a new sealed version; the corrected value reads back through /me/data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Server
from tests.integration.world import World, build_world

CLAIM = "CLAIM-纳税额应为 987654 元"


@pytest.fixture(scope="module")
def w(server: Server) -> World:
    return build_world(server)


def my_data(w: World, who: dict[str, Any]) -> dict[str, Any]:
    with w.as_(who) as c:
        r = c.get("/v1/me/data")
    assert r.status_code == 200, r.text
    return {d["dataset"]: d for d in r.json()["datasets"]}


def file(w: World, who: dict[str, Any], **body: Any) -> httpx.Response:
    with w.as_(who) as c:
        return c.post("/v1/objections", json={"dataset": "tax_annual", "field": "annual_tax",
                                              "claim": CLAIM, **body})


def resolve(w: World, objection_id: str, who: dict[str, Any] | None = None,
            **body: Any) -> httpx.Response:
    with w.as_(who or w.dept) as c:
        return c.post(f"/v1/objections/{objection_id}/resolution", json=body)


def test_me_data_is_exactly_the_callers_rows_labelled_by_holder(w: World):
    held = my_data(w, w.ent)
    assert set(held) == {"tax_annual", "bank_loans"}
    tax = held["tax_annual"]
    assert tax["held_by"] == {"id": w.dept["id"], "name": w.dept["name"], "role": "department"}
    assert [r["uscc"] for r in tax["records"]] == [w.ent["uscc"]]
    assert tax["records"][0]["annual_tax"] == 1000  # tax_csv: base + row index 0
    loans = held["bank_loans"]
    assert loans["held_by"]["role"] == "bank" and loans["records"] == [
        {"uscc": w.ent["uscc"], "defaulted": True}]
    assert w.ent2["uscc"] not in str(held)
    assert my_data(w, w.stranger) == {}
    with w.as_(w.bank) as c:
        assert c.get("/v1/me/data").json()["error"]["code"] == "role_not_allowed"


def test_objection_upheld_with_a_value_writes_a_new_version(w: World):
    r = file(w, w.ent)
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["status"] == "open" and filed["claim"] == CLAIM
    with w.as_(w.dept) as c:
        assert filed["id"] in {o["id"] for o in c.get("/v1/objections").json()["objections"]}
        version = c.get(f"/v1/datasets/{w.tax['id']}").json()["version"]
    with w.as_(w.other_dept) as c:
        assert c.get("/v1/objections").json()["objections"] == []
    done = resolve(w, filed["id"], decision="upheld", corrected_value=4242, reason="核实")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "upheld" and done.json()["dataset_version"] == version + 1
    assert my_data(w, w.ent)["tax_annual"]["records"][0]["annual_tax"] == 4242
    others = my_data(w, w.ent2)["tax_annual"]["records"][0]["annual_tax"]
    assert others == 1001  # untouched
    with w.as_(w.auditor) as c:
        described = c.get(f"/v1/datasets/{w.tax['id']}").json()
    assert described["version"] == version + 1 and described["rows"] == len(w.keys)
    with w.as_(w.ent) as c:
        mine = {o["id"]: o for o in c.get("/v1/objections").json()["objections"]}
    assert mine[filed["id"]]["status"] == "upheld" and mine[filed["id"]]["corrected"] is True
    conflict = resolve(w, filed["id"], decision="rejected", reason="again")
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"


def test_objection_rejected_keeps_the_value_and_needs_a_reason(w: World):
    filed = file(w, w.ent2, field="tax_arrears").json()
    before = my_data(w, w.ent2)["tax_annual"]
    no_reason = resolve(w, filed["id"], decision="rejected")
    assert no_reason.status_code == 422
    done = resolve(w, filed["id"], decision="rejected", reason="记录无误")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "rejected" and done.json()["corrected"] is False
    after = my_data(w, w.ent2)["tax_annual"]
    assert after == before
    with w.as_(w.ent2) as c:
        outcome = {o["id"]: o for o in c.get("/v1/objections").json()["objections"]}
    assert outcome[filed["id"]]["reason"] == "记录无误"


@pytest.mark.parametrize("value", ["not-a-number", 1.5, True, 10**30])
def test_a_correction_the_column_cannot_hold_writes_nothing(w: World, value):
    filed = file(w, w.ent2).json()
    with w.as_(w.auditor) as c:
        version = c.get(f"/v1/datasets/{w.tax['id']}").json()["version"]
    r = resolve(w, filed["id"], decision="upheld", corrected_value=value)
    assert r.status_code == 422, r.text
    assert str(value) not in r.text
    with w.as_(w.auditor) as c:
        assert c.get(f"/v1/datasets/{w.tax['id']}").json()["version"] == version
    with w.as_(w.ent2) as c:
        still = {o["id"]: o for o in c.get("/v1/objections").json()["objections"]}
    assert still[filed["id"]]["status"] == "open"


def test_filing_needs_a_record_and_a_real_field(w: World):
    absent = file(w, w.stranger)  # no record about it in tax_annual
    unknown = file(w, w.ent, dataset="no_such_set")
    assert absent.status_code == unknown.status_code == 404
    assert absent.json() == unknown.json()
    for field in ("nope", "uscc"):
        r = file(w, w.ent, field=field)
        assert r.status_code == 422 and ["body", "field"] in [
            e["loc"] for e in r.json()["error"]["detail"]["errors"]]
    bank_owned = file(w, w.ent, dataset="bank_loans", field="defaulted")
    assert bank_owned.status_code == 403


def test_resolution_only_by_the_owning_department(w: World):
    filed = file(w, w.ent).json()
    theirs = resolve(w, filed["id"], who=w.other_dept, decision="rejected", reason="x")
    absent = resolve(w, "obj_0000000000000000", who=w.other_dept, decision="rejected", reason="x")
    assert theirs.status_code == absent.status_code == 404
    assert theirs.json() == absent.json()
    for who in (w.ent, w.bank):
        assert resolve(w, filed["id"], who=who, decision="rejected",
                       reason="x").json()["error"]["code"] == "role_not_allowed"


def test_every_step_is_in_the_access_log_and_claims_are_sealed(w: World):
    # Each step once more here, so the test holds when run alone too.
    filed = file(w, w.ent).json()
    assert resolve(w, filed["id"], decision="rejected", reason="记录无误").status_code == 200
    with w.as_(w.ent) as c:
        assert c.get("/v1/objections").status_code == 200
    my_data(w, w.ent)
    with w.as_(w.ent) as c:
        events = c.get("/v1/me/access-log", params={"limit": 1000}).json()["events"]
    actions = {e["action"] for e in events}
    assert {"objection.file", "objection.resolve", "objection.list", "me.data"} <= actions
    for path in Path(w.server.data_dir).rglob("*"):
        if path.is_file():
            assert CLAIM.encode() not in path.read_bytes(), path.name
