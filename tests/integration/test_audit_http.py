"""The audit trail over HTTP and offline: every change and denial is an event, provably intact."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from audit.merkle import verify_consistency
from tests.integration.conftest import REPO, Server, start_server
from tests.integration.helpers import TAX_SPEC, codes, tax_csv


def _verify_cli(data_dir: Path, witness: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEROOM_")}
    args = [sys.executable, "-m", "saferoom", "audit", "verify", "--data-dir", str(data_dir)]
    if witness:
        args += ["--witness", str(witness)]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)


def test_changes_and_denials_are_audited_and_verifiable(tmp_path: Path):
    server: Server = start_server(tmp_path / "data")
    try:
        dept = server.new_principal("department", "税务局")
        auditor = server.new_principal("auditor")
        ent = server.new_principal("enterprise", uscc=codes(1, seed=8)[0])
        with server.client(dept["token"]) as c:
            ds = c.post("/v1/datasets", json=TAX_SPEC).json()
            c.put(f"/v1/datasets/{ds['id']}/data", content=tax_csv(codes(5)),
                  headers={"Content-Type": "text/csv"})
            assert c.get("/v1/audit/events").status_code == 403
        with server.client(ent["token"]) as c:
            assert c.get("/v1/audit/events").status_code == 403

        with server.client(auditor["token"]) as c:
            events = c.get("/v1/audit/events", params={"limit": 1000}).json()["events"]
            actions = [(e["action"], e["decision"], e["actor"]) for e in events]
            assert ("dataset.create", "allow", dept["id"]) in actions
            assert ("dataset.upload", "allow", dept["id"]) in actions
            assert ("audit.read", "deny", dept["id"]) in actions
            assert ("audit.read", "deny", ent["id"]) in actions
            created = [e for e in events if e["action"] == "principal.create"
                       and e["resource"] == ent["id"]]
            assert created[0]["subjects"] == [ent["uscc"]]
            assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
            for a, b in itertools.pairwise(events):
                assert b["prev_hash"] == a["hash"]
            denied = c.get("/v1/audit/events", params={"decision": "deny"}).json()["events"]
            assert denied and all(e["decision"] == "deny" for e in denied)
            page1 = c.get("/v1/audit/events", params={"limit": 2}).json()
            page2 = c.get("/v1/audit/events",
                          params={"limit": 2, "cursor": page1["next_cursor"]}).json()
            assert page2["events"][0]["seq"] == page1["events"][-1]["seq"] + 1
            by_subject = c.get("/v1/audit/events", params={"subject": ent["uscc"]}).json()
            assert [e["resource"] for e in by_subject["events"]] == [ent["id"]]

            v1 = c.get("/v1/audit/verify").json()
            assert v1["ok"] is True and v1["events"] >= len(events)
            witness = v1["checkpoint"]
            server.new_principal("bank")
            v2 = c.get("/v1/audit/verify").json()
            proof = c.get("/v1/audit/proof", params={"from": witness["size"]}).json()
            assert proof["old_root"] == witness["root"]
            assert verify_consistency(
                witness["size"], proof["to"], bytes.fromhex(witness["root"]),
                bytes.fromhex(proof["root"]), [bytes.fromhex(h) for h in proof["proof"]],
            )
            assert v2["checkpoint"]["size"] > witness["size"]
            cps = c.get("/v1/audit/checkpoints").json()["checkpoints"]
            assert witness["root"] in [cp["root"] for cp in cps]
    finally:
        server.stop()

    data_dir = tmp_path / "data"
    ok = _verify_cli(data_dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    witness_file = tmp_path / "witness.json"
    witness_file.write_text(json.dumps(cps[-1]))
    assert _verify_cli(data_dir, witness_file).returncode == 0

    # Rewrite one event's decision: the chain breaks there and the CLI names it.
    log = data_dir / "audit" / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if '"decision":"deny"' in line)
    lines[target] = lines[target].replace('"decision":"deny"', '"decision":"allow"')
    log.write_text("".join(lines))
    bad = _verify_cli(data_dir)
    assert bad.returncode != 0
    assert f"event {target + 1}" in bad.stdout + bad.stderr
