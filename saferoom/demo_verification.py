"""The demo's verification step: the bank checks three loan applicants without seeing their data.

Runs through the same `VerificationService` as `POST /v1/verifications`, audited per subject.
"""

from __future__ import annotations

from collections.abc import Callable

from saferoom.auth import Principal
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.room import Room
from saferoom.verification import VerificationRequest, VerificationService

Echo = Callable[[str], None]
CHECKS = [
    {"dataset": "tax_annual", "field": "annual_tax", "op": ">=", "value": 50_000},
    {"dataset": "tax_annual", "field": "tax_arrears", "op": "=", "value": False},
    {"dataset": "social_insurance", "field": "headcount", "op": ">=", "value": 10},
]
SHOWN = ["纳税额 ≥ ¥50,000", "无欠税", "参保职工 ≥ 10 人"]


def verification_step(room: Room, engine: DuckDBEngine, bank: Principal, firms: list[Principal],
                      echo: Echo) -> None:
    service = VerificationService(room, engine)
    subjects = [f.uscc for f in firms if f.uscc]
    request = VerificationRequest.model_validate(
        {"purpose": "loan_application", "subjects": subjects, "checks": CHECKS})
    body = service.verify(bank, request, room.call("verify", bank))
    echo(f"  the bank verifies {len(subjects)} loan applicants ("
         + "; ".join(SHOWN) + "), seeing only yes/no:")
    for firm in firms:
        mine = [r for r in body["results"] if r["uscc"] == firm.uscc]
        answers = ", ".join(
            f"{SHOWN[r['check']]}: " + ("是" if r["answer"] else "否" if r["answer"] is False
                                       else f"— ({r.get('reason')})") for r in mine)
        echo(f"      {firm.name}: {answers}")
