"""Watches and alerts over HTTP: edge-triggered alerts across uploads, consent, objections,
isolation between banks, bad input refused whole, the extraction limit, restarts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Server, start_server
from tests.integration.helpers import TAX_SPEC, agree, codes, consent, refused_batches

CSV = {"Content-Type": "text/csv"}
PURPOSE = "post_loan_monitoring"
POLICY = {"verify": {"purposes": ["loan_application", PURPOSE], "consent_required": True,
                     "fields": {"annual_tax": [">=", "<="], "tax_arrears": ["="]},
                     "max_distinct_values_per_consent": 3}}
ARREARS = {"dataset": "tax_annual", "field": "tax_arrears", "op": "=", "value": True}
LOW_TAX = {"dataset": "tax_annual", "field": "annual_tax", "op": "<=", "value": 500}
CONSENTING = range(8)
DEADLINE = 60.0


@dataclass
class Room:
    """One server with a tax dataset whose rows the tests change one firm at a time."""

    server: Server
    dept: dict[str, Any]
    bank: dict[str, Any]
    keys: list[str]
    firms: dict[int, dict[str, Any]]
    consents: dict[int, str]
    tax_id: str
    values: dict[int, tuple[int, bool]] = field(default_factory=dict)  # annual_tax, arrears

    def upload(self, **changes: tuple[int, bool]) -> int:
        """Replace the dataset with the current values, `changes` (by firm index `f3`) applied."""
        self.values.update({int(k[1:]): v for k, v in changes.items()})
        body = "uscc,region,annual_tax,tax_arrears\n" + "".join(
            f"{self.keys[i]},410302,{tax},{str(arrears).lower()}\n"
            for i, (tax, arrears) in sorted(self.values.items()))
        with self.server.client(self.dept["token"]) as c:
            r = c.put(f"/v1/datasets/{self.tax_id}/data", content=body, headers=CSV)
        assert r.status_code == 200, r.text
        return int(r.json()["version"])

    def watch(self, subjects: list[str], rules: list[dict[str, Any]],
              who: dict[str, Any] | None = None) -> httpx.Response:
        with self.server.client((who or self.bank)["token"]) as c:
            return c.post("/v1/watches",
                          json={"purpose": PURPOSE, "subjects": subjects, "rules": rules})

    def watches(self, who: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        with self.server.client((who or self.bank)["token"]) as c:
            r = c.get("/v1/watches", params={"limit": 1000})
        assert r.status_code == 200, r.text
        return {w["id"]: w for w in r.json()["watches"]}

    def alerts(self, watch_id: str | None = None,
               who: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = 0
        with self.server.client((who or self.bank)["token"]) as c:
            while cursor is not None:
                r = c.get("/v1/alerts", params={"cursor": cursor, "limit": 2})
                assert r.status_code == 200, r.text
                out += r.json()["alerts"]
                cursor = r.json()["next_cursor"]
        return [a for a in out if watch_id is None or a["watch_id"] == watch_id]

    def wait_evaluated(self, watch_id: str, version: int,
                       who: dict[str, Any] | None = None) -> None:
        """Until the watch has evaluated `version` of tax_annual (the worker runs on its own)."""
        deadline = time.monotonic() + DEADLINE
        while self.watches(who)[watch_id]["evaluated"].get("tax_annual", 0) < version:
            assert time.monotonic() < deadline, "the watch was not evaluated in time"
            time.sleep(0.05)

    def wait_alerts(self, watch_id: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + DEADLINE
        while len(found := self.alerts(watch_id)) < count:
            assert time.monotonic() < deadline, f"{len(found)} alerts, expected {count}"
            time.sleep(0.05)
        assert len(found) == count
        return found


def build_room(server: Server, seed: int) -> Room:
    keys = codes(40, seed=seed)
    dept = server.new_principal("department", "税务局")
    bank = server.new_principal("bank", "洛阳银行")
    with server.client(dept["token"]) as c:
        tax = c.post("/v1/datasets", json=TAX_SPEC).json()
        assert c.put(f"/v1/datasets/{tax['id']}/policy", json=POLICY).status_code == 200
    agree(server, bank["id"], ["tax_annual"], [PURPOSE])
    firms = {i: server.new_principal("enterprise", f"firm {i}", keys[i]) for i in range(10)}
    consents = {i: consent(server, firms[i], bank["id"], PURPOSE, ["tax_annual"])
                for i in CONSENTING}
    room = Room(server, dept, bank, keys, firms, consents, tax["id"])
    room.values = {i: (1000 + i, False) for i in range(30)}
    room.upload()
    return room


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = start_server(tmp_path_factory.mktemp("watch") / "data")
    yield build_room(server, seed=41)
    server.stop()


def test_alerts_fire_once_per_turn(room: Room) -> None:
    k = room.keys
    r = room.watch([k[0], k[20]], [ARREARS])
    assert r.status_code == 201, r.text
    watch = r.json()
    # k[20] never consented: kept, not evaluated until it does.
    assert watch["baseline"] == {"evaluated": 1, "not_evaluated": {"consent_required": 1}}
    room.upload(f0=(1000, True))  # false -> true
    (alert,) = room.wait_alerts(watch["id"], 1)
    assert alert["uscc"] == k[0] and alert["rule"] == ARREARS and alert["rule_index"] == 0
    assert set(alert) == {"uscc", "watch_id", "rule", "rule_index", "triggered_at"}
    room.wait_evaluated(watch["id"], room.upload(f0=(1500, True)))  # true -> true
    room.wait_evaluated(watch["id"], room.upload(f0=(1500, False)))  # true -> false
    assert len(room.alerts(watch["id"])) == 1
    room.upload(f0=(1500, True))  # false -> true again
    room.wait_alerts(watch["id"], 2)
    with room.server.client(room.firms[0]["token"]) as c:
        log = c.get("/v1/me/access-log", params={"limit": 1000}).json()["events"]
    actions = [e["action"] for e in log if e["actor"]["id"] == room.bank["id"]]
    assert actions.count("watch.create") == 1 and actions.count("watch.alert") == 2
    assert actions.count("alert.list") >= 1  # reading an alert is a release too


def test_the_baseline_does_not_alert(room: Room) -> None:
    room.upload(f1=(1001, True))
    watch = room.watch([room.keys[1]], [ARREARS]).json()
    room.wait_evaluated(watch["id"], room.upload(f1=(999, True)))
    assert room.alerts(watch["id"]) == []


def test_revocation_stops_alerts(room: Room) -> None:
    watch = room.watch([room.keys[2]], [ARREARS, LOW_TAX]).json()
    room.upload(f2=(1002, True))
    room.wait_alerts(watch["id"], 1)
    with room.server.client(room.firms[2]["token"]) as c:
        assert c.delete(f"/v1/consents/{room.consents[2]}").status_code == 200
    room.upload(f2=(1002, False))
    room.wait_evaluated(watch["id"], room.upload(f2=(400, True)))  # both rules true again
    assert len(room.alerts(watch["id"])) == 1


def test_an_upheld_objection_is_evaluated(room: Room) -> None:
    watch = room.watch([room.keys[3]], [LOW_TAX]).json()
    with room.server.client(room.firms[3]["token"]) as c:
        filed = c.post("/v1/objections", json={"dataset": "tax_annual", "field": "annual_tax",
                                               "claim": "the tax was refunded"}).json()
    with room.server.client(room.dept["token"]) as c:
        r = c.post(f"/v1/objections/{filed['id']}/resolution",
                   json={"decision": "upheld", "corrected_value": 300, "reason": "refund"})
    assert r.status_code == 200, r.text
    room.values[3] = (300, False)
    (alert,) = room.wait_alerts(watch["id"], 1)
    assert alert["rule"] == LOW_TAX


def test_banks_see_and_end_only_their_own(room: Room) -> None:
    mine = room.watch([room.keys[5]], [ARREARS]).json()
    other = room.server.new_principal("bank", "another bank")
    agree(room.server, other["id"], ["tax_annual"], [PURPOSE])
    theirs = room.watch([room.keys[5]], [ARREARS], who=other).json()
    assert set(room.watches(other)) == {theirs["id"]}
    with room.server.client(other["token"]) as c:
        r = c.delete(f"/v1/watches/{mine['id']}")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    version = room.upload(f5=(1005, True))
    room.wait_alerts(mine["id"], 1)
    # The other bank's watch has no consent behind it, so it raises nothing; nor does it see ours.
    room.wait_evaluated(theirs["id"], version, who=other)
    assert room.alerts(who=other) == []
    with room.server.client(room.bank["token"]) as c:
        assert c.delete(f"/v1/watches/{mine['id']}").status_code == 200
        assert c.delete(f"/v1/watches/{mine['id']}").status_code == 404
    assert mine["id"] not in room.watches()
    assert len(room.alerts(mine["id"])) == 1  # what was released stays listed


def test_watch_rules_count_towards_the_extraction_limit(room: Room) -> None:
    k = room.keys[4]
    rules = [{**LOW_TAX, "op": ">=", "value": v} for v in (100, 200)] + [{**LOW_TAX, "value": 300}]
    assert room.watch([k], rules).json()["baseline"]["evaluated"] == 3
    with room.server.client(room.bank["token"]) as c:
        asked = [c.post("/v1/verifications", json={
            "purpose": PURPOSE, "subjects": [k],
            "checks": [{**LOW_TAX, "op": ">=", "value": v}]}).json()["results"][0]
            for v in (400, 200)]
    assert (asked[0]["answer"], asked[0]["reason"]) == (None, "threshold_exceeded")
    assert asked[1]["answer"] is True
    fourth = room.watch([k], [{**LOW_TAX, "value": 999}]).json()
    assert fourth["baseline"] == {"evaluated": 0, "not_evaluated": {"threshold_exceeded": 1}}


@pytest.mark.parametrize(("mutate", "status", "code"), [
    *refused_batches("rules", 100_000),
    (lambda b, k: b.update(rules=[]), 422, "invalid_request"),
    # A field outside the policy refuses the watch whole (verification answers it null).
    (lambda b, k: b["rules"][0].update(field="region", value="410302"), 403, "column_not_allowed"),
])
def test_bad_input_stores_nothing(room: Room, mutate: Any, status: int, code: str) -> None:
    body: dict[str, Any] = {"purpose": PURPOSE, "subjects": [room.keys[0]],
                            "rules": [{**LOW_TAX, "value": 1000}]}
    mutate(body, room.keys)
    before = set(room.watches())
    since = datetime.now(UTC).isoformat()
    with room.server.client(room.bank["token"]) as c:
        r = c.post("/v1/watches", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert room.keys[0] not in r.text
    assert set(room.watches()) == before
    with room.server.admin() as c:
        events = c.get("/v1/audit/events", params={
            "action": "watch.create", "since": since, "limit": 1000}).json()["events"]
    assert events and all(e["decision"] == "deny" for e in events)


def test_roles_and_agreements(room: Room) -> None:
    stranger_bank = room.server.new_principal("bank")
    r = room.watch([room.keys[0]], [LOW_TAX], who=stranger_bank)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "no_agreement")
    r = room.watch([room.keys[0]], [LOW_TAX], who=room.firms[0])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    with room.server.client(room.firms[0]["token"]) as c:
        assert c.get("/v1/alerts").json()["error"]["code"] == "role_not_allowed"


@pytest.mark.slow
def test_upload_returns_before_a_100000_subject_watch_is_evaluated(room: Room) -> None:
    subjects = [room.keys[6], *codes(99_999, seed=99)]
    r = room.watch(subjects, [ARREARS, LOW_TAX])
    assert r.status_code == 201, r.text
    watch = r.json()
    assert watch["subject_count"] == 100_000 and watch["baseline"]["evaluated"] == 2
    version = room.upload(f6=(100, True))  # returns as soon as the version is committed
    alerts = room.wait_alerts(watch["id"], 2)
    assert {(a["uscc"], a["rule_index"]) for a in alerts} == {(room.keys[6], 0), (room.keys[6], 1)}
    progress = f"watch evaluation dataset={room.tax_id} v{version}: "
    deadline = time.monotonic() + DEADLINE
    while progress not in (log := room.server.log()):  # logged just after the alerts are stored
        assert time.monotonic() < deadline, "no progress line in the log"
        time.sleep(0.05)
    assert room.keys[6] not in log


def test_watches_survive_a_restart_and_catch_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = build_room(start_server(data_dir), seed=43)
    watch = first.watch([first.keys[0]], [ARREARS]).json()
    first.upload(f0=(1000, True))
    first.server.stop()  # the evaluation may or may not have run: either way, one alert
    second = start_server(data_dir)
    try:
        first.server = second
        first.wait_alerts(watch["id"], 1)
        first.wait_evaluated(watch["id"], 2)
        assert len(first.alerts(watch["id"])) == 1
    finally:
        second.stop()
