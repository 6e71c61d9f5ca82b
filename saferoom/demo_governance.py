"""The demo's governance step: an agreement, each dataset's policy, consents, one access log.

Runs the same operations as the HTTP routes, each audited the same way, on the demo's room.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from policies.consent import ConsentRequest
from saferoom.api.agreements import AgreementCreate, add_agreement
from saferoom.api.consents import consent_page, grant_consent, revoke_consent
from saferoom.api.dataset_policy import set_policy
from saferoom.auth import Principal
from saferoom.room import Room
from saferoom.state import utcnow
from saferoom.subject_rights import access_entry, principal_names

Echo = Callable[[str], None]
SHARED = ["market_registry", "tax_annual", "social_insurance", "utilities", "court_records"]
PURPOSES = ["credit_research", "loan_application", "post_loan_monitoring", "credit_modeling"]
_MONITOR = ["loan_application", "post_loan_monitoring"]

# What each department lets banks check, and the risk notice an enterprise reads first.
_VERIFY: dict[str, tuple[dict[str, list[str]], str]] = {
    "market_registry": ({"registered_capital": [">=", "<="], "founded": ["<="],
                         "industry": ["="]},
                        "授权后，银行可在数据安全屋内核验您的注册资本、成立日期和行业，不会看到原始登记数据。"),
    "tax_annual": ({"annual_tax": [">=", "<="], "tax_arrears": ["="]},
                   "授权后，银行可核验您上一年度纳税总额是否达到某一数额、是否存在欠税；"
                   "多次核验的结果可能间接反映纳税金额，每项最多核验 3 个不同数值。"),
    "social_insurance": ({"headcount": [">=", "<="], "arrears_months": ["<=", "="]},
                         "授权后，银行可核验您的参保职工人数和社保欠缴月数，用于贷款审批和贷后管理。"),
    "utilities": ({"overdue_months": [">=", "<=", "="]},
                  "授权后，银行可核验您近 24 个月水电欠费月数，用于贷款审批和贷后管理。"),
    "court_records": ({"judgments": [">=", "<=", "="]},
                      "授权后，银行可核验您作为被告或被执行人的生效裁判文书数量。"),
}


def _policy(dataset: str) -> dict[str, Any]:
    fields, notice = _VERIFY[dataset]
    return {
        "aggregate": {"purposes": ["credit_research"], "functions": ["count", "sum", "avg"],
                      "min_group_size": 10, "epsilon_per_period": 3.0, "period": "month"},
        "verify": {"purposes": _MONITOR, "consent_required": True, "fields": fields,
                   "max_distinct_values_per_consent": 3},
        "model": {"purposes": ["credit_modeling", "loan_application"],
                  "custom_code_requires_review": True,
                  "min_training_rows": 500, "scoring_consent_required": True},
        "consent_notice": notice,
        "max_consent_days": 365,
    }


def governance_step(room: Room, people: dict[str, Principal], firms: list[Principal],
                    echo: Echo) -> None:
    """Agreement, policies, a consent from each of `firms` (the last revoked), then the first
    one's access log. `people` holds the demo's admin, bank and departments by key."""
    bank = people["bank"]
    echo("  admin signs a data-sharing agreement with the bank; departments set policies:")
    agreement = add_agreement(room, room.call("agreement.create", people["admin"]),
                              AgreementCreate(bank_id=bank.id, datasets=SHARED,
                                              purposes=PURPOSES,
                                              valid_until=utcnow() + timedelta(days=365)))
    echo(f"      {agreement['id']}: {len(SHARED)} datasets × {len(PURPOSES)} purposes, "
         f"valid until {agreement['valid_until'][:10]}")
    owners = {p.id: p for p in people.values()}
    for d in room.state.datasets():
        if d.name in _VERIFY:
            stored = set_policy(room, room.call("policy.put", owners[d.owner_id]), d,
                                _policy(d.name))["policy"]
            echo(f"      {d.name:<17} verify {', '.join(stored['verify']['fields'])}")

    echo(f"  {len(firms)} enterprises read the risk notice and consent; the last then revokes:")
    for firm in firms:
        request = ConsentRequest(
            grantee=bank.id, purpose="loan_application",
            datasets=["tax_annual", "social_insurance"],
            expires_at=utcnow() + timedelta(days=180), acknowledge_risks=True)
        granted, _ = grant_consent(room, room.call("consent.grant", firm), request)
        echo(f"      {firm.name} → {granted.consent.id}")
    revoke_consent(room, room.call("consent.revoke", firms[-1]), granted.consent.id)
    listed = consent_page(room, room.call("consent.list", bank))["consents"]
    echo(f"  the bank lists its consents: {[c['status'] for c in listed]}")
    _print_access_log(room, firms[0], echo)


def _print_access_log(room: Room, firm: Principal, echo: Echo) -> None:
    assert firm.uscc is not None
    events = room.audit.events(subject=firm.uscc, limit=50)
    names = principal_names(room, (e.actor for e in events))
    echo(f"  {firm.name} reads its access log (GET /v1/me/access-log), {len(events)} events:")
    for e in events:
        entry = access_entry(e, firm.uscc, names)
        actor = entry["actor"]
        # The demo registers its principals itself, without an admin token: no actor.
        who = f"{actor['name']} ({actor['role']})" if actor["id"] else "(demo setup)"
        echo(f"      #{entry['seq']:<4} {entry['ts'][:19]}  {who}  {entry['action']}  "
             f"{entry['purpose'] or ''}  {entry['decision']}")
