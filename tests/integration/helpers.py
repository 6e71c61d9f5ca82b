"""Small builders shared by the HTTP tests: dataset bodies, CSV text with valid keys, grants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from saferoom import uscc
from tests.integration.conftest import Server

TAX_SPEC = {
    "name": "tax_annual",
    "description": "annual tax paid",
    "key": "uscc",
    "columns": [
        {"name": "uscc", "type": "string", "role": "key"},
        {"name": "region", "type": "string", "role": "dimension",
         "values": ["410302", "410311"], "classification": "public"},
        {"name": "annual_tax", "type": "int", "role": "measure", "bounds": [0, 10_000_000],
         "classification": "sensitive"},
        {"name": "tax_arrears", "type": "bool", "role": "flag", "classification": "sensitive"},
    ],
    "max_rows_per_subject": 1,
}


def codes(n: int, seed: int = 0) -> list[str]:
    return [str(c) for c in uscc.generate(np.random.default_rng(seed), n, ["410302", "410311"])]


def tax_csv(keys: list[str], base: int = 1000, header: bool = True) -> str:
    lines = ["uscc,region,annual_tax,tax_arrears"] if header else []
    lines += [f"{k},{'410302' if i % 2 else '410311'},{base + i},{'true' if i % 7 == 0 else 'false'}"
              for i, k in enumerate(keys)]
    return "\n".join(lines) + "\n"


def agree(server: Server, bank_id: str, datasets: list[str], purposes: list[str]) -> str:
    """An admin-signed agreement for 90 days; -> its id."""
    with server.admin() as c:
        r = c.post("/v1/agreements", json={
            "bank_id": bank_id, "datasets": datasets, "purposes": purposes,
            "valid_until": (datetime.now(UTC) + timedelta(days=90)).isoformat()})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def consent(server: Server, firm: dict[str, Any], bank_id: str, purpose: str,
            datasets: list[str]) -> str:
    """`firm` consents, risks acknowledged, for 30 days; -> the consent id."""
    with server.client(firm["token"]) as c:
        r = c.post("/v1/consents", json={
            "grantee": bank_id, "purpose": purpose, "datasets": datasets,
            "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "acknowledge_risks": True})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


Mutation = Callable[[dict[str, Any], list[str]], Any]


def refused_batches(items: str, max_subjects: int) -> list[tuple[Mutation, int, str]]:
    """Ways to spoil a valid `{"purpose", "subjects", <items>: [check]}` body, whose check is
    `annual_tax >= …` under a policy allowing `>=` and `<=`: each must be refused whole."""
    return [
        (lambda b, k: b.update(subjects=[k[0], k[0]]), 422, "invalid_request"),
        (lambda b, k: b.update(subjects=[k[0], "91410302MA00000000"]), 422, "invalid_request"),
        (lambda b, k: b.update(subjects=[]), 422, "invalid_request"),
        (lambda b, k: b.update(subjects=k[:1] * (max_subjects + 1)), 422, "invalid_request"),
        (lambda b, k: b.update({items: b[items] * 11}), 422, "invalid_request"),
        (lambda b, k: b[items][0].update(dataset="nope"), 422, "invalid_request"),
        (lambda b, k: b[items][0].update(field="nope"), 422, "invalid_request"),
        (lambda b, k: b[items][0].update(value="many"), 422, "invalid_request"),
        (lambda b, k: b[items][0].update(value=True), 422, "invalid_request"),
        (lambda b, k: b[items][0].update(op="~"), 422, "invalid_request"),
        (lambda b, k: b[items][0].update(op=">"), 403, "query_not_allowed"),
        (lambda b, k: b.update(purpose="marketing"), 403, "purpose_not_allowed"),
        (lambda b, k: b.update(extra=1), 422, "invalid_request"),
    ]
