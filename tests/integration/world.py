"""A small governed room over HTTP: a tax dataset with a policy, a bank's own data, principals.

Built once per test module on its module-scoped server; tests add what they need on top.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.conftest import Server
from tests.integration.helpers import TAX_SPEC, codes, tax_csv
from tests.policies.worlds import API_EXAMPLE

CSV = {"Content-Type": "text/csv"}
TAX_POLICY: dict[str, Any] = {**API_EXAMPLE, "consent_notice": "授权后银行可核验您的纳税数据。",
                               "max_consent_days": 90}
LOANS_SPEC = {
    "name": "bank_loans", "key": "uscc",
    "columns": [{"name": "uscc", "type": "string", "role": "key"},
                {"name": "defaulted", "type": "bool", "role": "flag"}],
}


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@dataclass
class World:
    server: Server
    dept: dict[str, Any]
    other_dept: dict[str, Any]
    bank: dict[str, Any]
    other_bank: dict[str, Any]
    auditor: dict[str, Any]
    ent: dict[str, Any]  # has records in tax_annual and in the bank's private dataset
    ent2: dict[str, Any]  # has a record in tax_annual
    stranger: dict[str, Any]  # an enterprise with no record anywhere
    tax: dict[str, Any]
    loans: dict[str, Any]
    keys: list[str]

    def as_(self, who: dict[str, Any]) -> Any:
        return self.server.client(who["token"])

    def consent_body(self, **overrides: Any) -> dict[str, Any]:
        return {"grantee": self.bank["id"], "purpose": "loan_application",
                "datasets": ["tax_annual"], "expires_at": later(days=30),
                "acknowledge_risks": True, **overrides}


def build_world(server: Server) -> World:
    tag = secrets.token_hex(2)
    keys = codes(20, seed=7)
    p = server.new_principal
    dept, other_dept = p("department", f"税务局{tag}"), p("department", f"法院{tag}")
    bank, other_bank = p("bank", f"洛阳银行{tag}"), p("bank", f"other bank{tag}")
    ent, ent2 = p("enterprise", "甲公司", keys[0]), p("enterprise", "乙公司", keys[1])
    stranger = p("enterprise", "丙公司", codes(1, seed=8)[0])
    with server.client(dept["token"]) as c:
        tax = c.post("/v1/datasets", json=TAX_SPEC).json()
        assert c.put(f"/v1/datasets/{tax['id']}/data", content=tax_csv(keys),
                     headers=CSV).status_code == 200
        assert c.put(f"/v1/datasets/{tax['id']}/policy", json=TAX_POLICY).status_code == 200
    with server.client(bank["token"]) as c:
        loans = c.post("/v1/datasets", json=LOANS_SPEC).json()
        r = c.put(f"/v1/datasets/{loans['id']}/data",
                  content=f"uscc,defaulted\n{keys[0]},true\n{keys[5]},false\n", headers=CSV)
        assert r.status_code == 200, r.text
    return World(server, dept, other_dept, bank, other_bank, p("auditor"), ent, ent2,
                 stranger, tax, loans, keys)
