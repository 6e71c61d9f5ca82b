"""Which role may call which operation: the first gate of every request.

The operation names are the audit `action` names; an operation absent here is refused.
"""

from __future__ import annotations

from typing import Literal

from policies.errors import PolicyDenied

Role = Literal["department", "bank", "enterprise", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("department", "bank", "enterprise", "auditor", "admin")

OPERATION_ROLES: dict[str, frozenset[Role]] = {
    "principal.create": frozenset({"admin"}),
    "me.read": frozenset(ROLES),
    "agreement.create": frozenset({"admin"}),
    "dataset.create": frozenset({"department", "bank"}),
    "dataset.upload": frozenset({"department", "bank"}),
    "dataset.list": frozenset({"department", "bank", "auditor", "admin"}),
    "dataset.read": frozenset({"department", "bank", "auditor", "admin"}),
    "dataset.mock": frozenset({"department", "bank", "auditor", "admin"}),
    "audit.read": frozenset({"auditor", "admin"}),
    # Consent and subject rights: the enterprise acts on its own; a bank sees consents given to it.
    "consent.grant": frozenset({"enterprise"}),
    "consent.list": frozenset({"enterprise", "bank"}),
    "consent.revoke": frozenset({"enterprise"}),
    # The risk notices are read before a grant, so that the subject is told what it accepts.
    "consent.notices": frozenset({"enterprise"}),
    "me.data": frozenset({"enterprise"}),
    "me.access_log": frozenset({"enterprise"}),
    "objection.file": frozenset({"enterprise"}),
    "objection.list": frozenset({"enterprise", "department"}),
    "objection.resolve": frozenset({"department"}),
    # A bank sets the policy of its own private datasets, as a department does of its own.
    "policy.put": frozenset({"department", "bank"}),
    "policy.get": frozenset({"department", "bank", "auditor", "admin"}),
    # A bank reads the agreements it is party to; auditors read them all.
    "agreement.list": frozenset({"admin", "auditor", "bank"}),
    "agreement.end": frozenset({"admin"}),
    "query": frozenset({"bank"}),
    "query.preview": frozenset({"bank"}),
    "budget.read": frozenset({"bank"}),
    "verify": frozenset({"bank"}),
    "watch.create": frozenset({"bank"}),
    "watch.list": frozenset({"bank"}),
    "watch.delete": frozenset({"bank"}),
    "alert.list": frozenset({"bank"}),
    "job.submit": frozenset({"bank"}),
    "job.dry_run": frozenset({"bank"}),
    # The reviewing department reads the job it is asked to approve.
    "job.read": frozenset({"bank", "department"}),
    "job.review": frozenset({"department"}),
    "job.cancel": frozenset({"bank"}),
    "model.list": frozenset({"bank"}),
    "model.score": frozenset({"bank"}),
}


def role_may(role: str, operation: str) -> bool:
    """Whether `role` may perform `operation` (an unknown operation: nobody may)."""
    return role in OPERATION_ROLES.get(operation, frozenset())


def authorize_role(role: Role, operation: str) -> None:
    """Return if `role` may perform `operation`, else raise `role_not_allowed`."""
    if not role_may(role, operation):
        raise PolicyDenied("role_not_allowed", f"the {role} role may not perform {operation}")
