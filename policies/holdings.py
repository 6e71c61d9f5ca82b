"""Who may see a dataset's schema, who may change it, and whose records take objections.

Pure: the facts are roles and owners; `saferoom` looks them up and acts on the answer.
"""

from __future__ import annotations

from policies.decisions import Decision


def may_see_dataset(role: str, principal_id: str, owner_id: str, owner_role: str) -> bool:
    """Schemas, never rows: admins and auditors see every dataset; departments and banks see
    the departments' datasets and their own; an enterprise reads its records as a subject."""
    if role in ("admin", "auditor"):
        return True
    if role == "enterprise":
        return False
    return owner_role == "department" or owner_id == principal_id


def decide_dataset_change(principal_id: str, owner_id: str) -> Decision:
    """Uploads and policies: the owner only."""
    if principal_id != owner_id:
        return Decision.deny("role_not_allowed", "only the dataset's owner may change it")
    return Decision.allow()


def decide_objection_target(owner_role: str) -> Decision:
    """A department resolves objections to its records; a bank corrects its own data itself."""
    if owner_role != "department":
        return Decision.deny("query_not_allowed", "objections are resolved by departments; a "
                             "bank's own records are corrected by that bank")
    return Decision.allow()
