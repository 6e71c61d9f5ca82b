"""The demo's monitoring step: the bank watches its borrowers; a new court judgment alerts it.

Runs the same `WatchService` as `/v1/watches`; its worker evaluates after the court's upload.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd

from policies.consent import ConsentRequest
from saferoom import datasets as ops
from saferoom.api.consents import grant_consent
from saferoom.auth import Principal
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.room import Room
from saferoom.state import utcnow
from saferoom.verification import CheckRequest, VerificationService
from saferoom.watches import WatchRequest, WatchService

Echo = Callable[[str], None]
Enroll = Callable[[Room, str, str, str], tuple[Principal, str]]  # role, name, uscc
PURPOSE = "post_loan_monitoring"
RULES = [CheckRequest(dataset="court_records", field="judgments", op=">=", value=1),
         CheckRequest(dataset="utilities", field="overdue_months", op=">=", value=3)]
DEADLINE_SECONDS = 30.0


def monitoring_step(room: Room, engine: DuckDBEngine, people: dict[str, Principal],
                    frames: dict[str, pd.DataFrame], echo: Echo, enroll: Enroll) -> None:
    """A clean borrower consents to monitoring; the bank watches every borrower; the court
    records a judgment against that borrower; the alert appears and is printed."""
    bank, courts = people["bank"], people["courts"]
    borrowers = frames["loan_outcomes"]["uscc"].astype(str).tolist()
    registry = frames["market_registry"].set_index("uscc")["name"]
    utilities = frames["utilities"].set_index("uscc")["overdue_months"]
    in_court = set(frames["court_records"]["uscc"].astype(str))
    enrolled = {p.uscc for p in people.values()}
    # A borrower neither rule holds for yet, so the alert below is a real turn.
    uscc = next((u for u in borrowers
                 if u not in in_court and u not in enrolled and utilities.get(u, 0) < 3), None)
    if uscc is None:
        echo("  post-loan monitoring: skipped, no borrower without court records here")
        return
    firm, _ = enroll(room, "enterprise", str(registry[uscc]), uscc)
    grant_consent(room, room.call("consent.grant", firm), ConsentRequest(
        grantee=bank.id, purpose=PURPOSE, datasets=["court_records", "utilities"],
        expires_at=utcnow() + timedelta(days=365), acknowledge_risks=True))
    echo(f"  post-loan monitoring: {firm.name} consents to {PURPOSE} (court_records, utilities)")
    service = WatchService(room, VerificationService(room, engine), engine)
    service.start()
    try:
        request = WatchRequest(purpose=PURPOSE, subjects=borrowers, rules=RULES)
        t = time.perf_counter()
        watch = service.create(bank, request, room.call("watch.create", bank))
        baseline = watch["baseline"]
        echo(f"  the bank watches its {len(borrowers):,} borrowers ({watch['id']}, "
             f"{time.perf_counter() - t:.1f}s): " + "; ".join(_rule(r) for r in watch["rules"]))
        waiting = baseline["not_evaluated"].get("consent_required", 0)
        echo(f"      baseline set without alerting: {baseline['evaluated']} (borrower, rule) pairs "
             f"evaluated; {waiting:,} wait until their borrower consents")
        record = room.state.dataset_by_name("court_records")
        assert record is not None
        t = time.perf_counter()
        rows, version = ops.upload(room, record, f"uscc,judgments\n{uscc},1\n".encode(), "csv",
                                   append=True)
        room.call("dataset.upload", courts).record(
            resource=record.id, released={"rows": rows, "version": version})
        echo(f"  {courts.name} appends a new judgment (upload returned in "
             f"{time.perf_counter() - t:.2f}s; the watch is evaluated after it)")
        _print_alerts(room, service, bank, registry, echo, time.perf_counter())
    finally:
        service.stop()


def _rule(rule: dict[str, Any]) -> str:
    return f"{rule['dataset']}.{rule['field']} {rule['op']} {rule['value']}"


def _print_alerts(room: Room, service: WatchService, bank: Principal, names: pd.Series,
                  echo: Echo, since: float) -> None:
    while not service.store.alerts(bank.id, 0, 1):
        if time.perf_counter() - since > DEADLINE_SECONDS:
            echo("      no alert yet; the worker is still evaluating (see the log)")
            return
        time.sleep(0.02)
    alerts = service.alerts(bank, 0, 100, room.call("alert.list", bank))["alerts"]
    echo(f"  GET /v1/alerts, {time.perf_counter() - since:.2f}s after the upload:")
    for a in alerts:
        echo(f"      {names.get(a['uscc'], '?')} ({a['uscc']}): {_rule(a['rule'])} "
             f"turned true at {a['triggered_at'][:19]}Z")
