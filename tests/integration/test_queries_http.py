"""DP aggregate queries over HTTP: answers near the truth, refusals with codes, exact budgets
that 50 concurrent queries cannot overdraw, and every spend in the audit log."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from saferoom import synthetic
from tests.integration.conftest import Server, start_server

N = 3000
PURPOSE = "credit_research"
CSV = {"Content-Type": "text/csv"}


def _csv(frame) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
    return buf.getvalue().replace("True", "true").replace("False", "false")


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory):
    server = start_server(tmp_path_factory.mktemp("q") / "data")
    frames = synthetic.generate(N, seed=11)
    dept = server.new_principal("department", "market regulation")
    bank = server.new_principal("bank", "洛阳银行")
    ids = {}
    with server.client(dept["token"]) as c:
        for name in ("market_registry", "tax_annual"):
            ds = c.post("/v1/datasets", json=synthetic.DATASET_SPECS[name].body).json()
            r = c.put(f"/v1/datasets/{ds['id']}/data", content=_csv(frames[name]), headers=CSV)
            assert r.status_code == 200, r.text
            policy = {"aggregate": {"purposes": [PURPOSE], "functions": ["count", "sum", "avg"],
                                    "epsilon_per_period": 5.0, "period": "month"}}
            assert c.put(f"/v1/datasets/{ds['id']}/policy", json=policy).status_code == 200
            ids[name] = ds["id"]
    with server.admin() as c:
        r = c.post("/v1/agreements", json={
            "bank_id": bank["id"], "datasets": ["market_registry", "tax_annual"],
            "purposes": [PURPOSE],
            "valid_until": (datetime.now(UTC) + timedelta(days=90)).isoformat()})
        assert r.status_code == 201, r.text
    yield server, bank, frames, ids
    server.stop()


def test_count_by_region_is_close_and_reports_privacy(room):
    server, bank, frames, _ = room
    truth = frames["market_registry"]["region"].value_counts().to_dict()
    with server.client(bank["token"]) as c:
        r = c.post("/v1/queries", json={
            "sql": "SELECT region, COUNT(*) AS n FROM market_registry GROUP BY region",
            "epsilon": 0.5, "purpose": PURPOSE})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == ["region", "n"]
    assert len(body["rows"]) == 14  # every Luoyang division, even empty ones
    ci = body["privacy"]["ci95"]["n"]
    released = [(region, n) for region, n in body["rows"] if n is not None]
    assert released  # most divisions have enough companies to be released
    for region, n in released:
        assert abs(n - truth.get(region, 0)) <= 3 * ci
    assert body["privacy"]["epsilon_spent"] == 0.5
    assert body["privacy"]["mechanism"] == "discrete_laplace"
    assert body["budget"]["market_registry"]["spent"] == pytest.approx(0.5)
    assert body["budget"]["market_registry"]["total"] == 5.0


def test_preview_spends_nothing(room):
    server, bank, _, _ = room
    with server.client(bank["token"]) as c:
        before = c.get("/v1/budgets").json()["budgets"]["tax_annual"]["spent"]
        r = c.post("/v1/queries/preview", json={
            "sql": "SELECT AVG(annual_tax) FROM tax_annual", "epsilon": 1, "purpose": PURPOSE})
        assert r.status_code == 200, r.text
        assert r.json()["privacy"]["noise_scale"]["avg_annual_tax"] > 0
        after = c.get("/v1/budgets").json()["budgets"]["tax_annual"]["spent"]
    assert before == after


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"sql": "SELECT uscc FROM tax_annual", "epsilon": 1, "purpose": PURPOSE}, 403,
         "query_not_allowed"),
        ({"sql": "SELECT MAX(annual_tax) FROM tax_annual", "epsilon": 1, "purpose": PURPOSE}, 403,
         "function_not_allowed"),
        ({"sql": "SELECT COUNT(*) FROM tax_annual GROUP BY uscc", "epsilon": 1,
          "purpose": PURPOSE}, 403, "column_not_allowed"),
        ({"sql": "SELECT COUNT(*) FROM tax_annual", "epsilon": 1, "purpose": "marketing"}, 403,
         "purpose_not_allowed"),
        ({"sql": "SELECT COUNT(*) FROM tax_annual", "epsilon": 0, "purpose": PURPOSE}, 422,
         "invalid_request"),
        ({"sql": "SELECT COUNT(*) FROM tax_annual", "epsilon": 0.1234567, "purpose": PURPOSE},
         422, "invalid_request"),
        ({"sql": "SELECT COUNT(*) FROM tax_annual", "epsilon": 1, "purpose": PURPOSE, "x": 1},
         422, "invalid_request"),
        ({"sql": "SELECT COUNT(* FROM tax_annual", "epsilon": 1, "purpose": PURPOSE}, 400,
         "invalid_request"),
    ],
)
def test_refusals(room, body, status, code):
    server, bank, _, _ = room
    with server.client(bank["token"]) as c:
        r = c.post("/v1/queries", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_other_roles_and_banks_without_agreement(room):
    server, _, _, _ = room
    other_bank = server.new_principal("bank")
    dept = server.new_principal("department")
    body = {"sql": "SELECT COUNT(*) FROM tax_annual", "epsilon": 1, "purpose": PURPOSE}
    with server.client(other_bank["token"]) as c:
        r = c.post("/v1/queries", json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "no_agreement"
    with server.client(dept["token"]) as c:
        r = c.post("/v1/queries", json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed"


def test_fifty_concurrent_queries_never_overdraw(tmp_path):
    server: Server = start_server(tmp_path / "data")
    try:
        dept = server.new_principal("department")
        bank = server.new_principal("bank")
        frames = synthetic.generate(500, seed=2)
        with server.client(dept["token"]) as c:
            ds = c.post("/v1/datasets", json=synthetic.DATASET_SPECS["tax_annual"].body).json()
            c.put(f"/v1/datasets/{ds['id']}/data", content=_csv(frames["tax_annual"]),
                  headers=CSV)
            c.put(f"/v1/datasets/{ds['id']}/policy", json={"aggregate": {
                "purposes": [PURPOSE], "functions": ["count"], "epsilon_per_period": 1.0}})
        with server.admin() as c:
            c.post("/v1/agreements", json={
                "bank_id": bank["id"], "datasets": ["tax_annual"], "purposes": [PURPOSE],
                "valid_until": (datetime.now(UTC) + timedelta(days=9)).isoformat()})
        body = {"sql": "SELECT COUNT(*) FROM tax_annual", "epsilon": 0.3, "purpose": PURPOSE}

        def ask(_: int) -> int:
            with server.client(bank["token"]) as c:
                return c.post("/v1/queries", json=body).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(ask, range(50)))
        assert statuses.count(200) == 3  # 3 x 0.3 <= 1.0 < 4 x 0.3
        assert statuses.count(403) == 47
        with server.client(bank["token"]) as c:
            budget = c.get("/v1/budgets").json()["budgets"]["tax_annual"]
        assert budget["spent"] == pytest.approx(0.9) and budget["remaining"] == pytest.approx(0.1)
        auditor = server.new_principal("auditor")
        with server.client(auditor["token"]) as c:
            events = c.get("/v1/audit/events", params={"action": "query", "limit": 1000}
                           ).json()["events"]
        allowed = [e for e in events if e["decision"] == "allow"]
        denied = [e for e in events if e["decision"] == "deny"]
        assert len(allowed) == 3 and all(e["epsilon"] == 0.3 for e in allowed)
        assert len(denied) == 47 and {e["reason"] for e in denied} == {"budget_exhausted"}
    finally:
        server.stop()


def test_a_spend_survives_kill_9(room, tmp_path):
    server, bank, _, _ = room
    body = {"sql": "SELECT COUNT(*) FROM market_registry", "epsilon": 0.25, "purpose": PURPOSE}
    with server.client(bank["token"]) as c:
        spent = c.get("/v1/budgets").json()["budgets"]["market_registry"]["spent"]
        assert c.post("/v1/queries", json=body).status_code == 200
    server.process.kill()  # SIGKILL: no shutdown hooks
    server.process.wait()
    again = start_server(server.data_dir, {"SAFEROOM_ADMIN_TOKEN": server.admin_token})
    try:
        with again.client(bank["token"]) as c:
            after = c.get("/v1/budgets").json()["budgets"]["market_registry"]["spent"]
        assert after == pytest.approx(spent + 0.25)
    finally:
        again.stop()
