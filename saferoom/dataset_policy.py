"""A dataset's policy document and column facts, as the `policies` decisions want them.

The policy is stored validated in `datasets.policy`; a dataset without one allows no use.
"""

from __future__ import annotations

import json
from typing import Any

from policies.documents import DatasetPolicy, PolicyDocumentError, parse_policy
from policies.facts import ColumnFacts
from saferoom.errors import InvalidFields
from saferoom.state import DatasetRecord, StateStore


def column_facts(d: DatasetRecord) -> dict[str, ColumnFacts]:
    """Each declared column's name, type and role."""
    return {c["name"]: ColumnFacts(c["name"], c["type"], c["role"]) for c in d.spec["columns"]}


def policy_of(d: DatasetRecord) -> DatasetPolicy | None:
    """The stored policy (validated when it was put), or None when none was ever put."""
    return None if d.policy is None else DatasetPolicy.model_validate(d.policy)


def validated_policy(d: DatasetRecord, document: object) -> dict[str, Any]:
    """The document as it will be stored: checked against the shape and the dataset's columns.

    Raises `InvalidFields` (422) with one entry per problem, at `body.<path>`; never a value.
    """
    try:
        policy = parse_policy(document, column_facts(d))
    except PolicyDocumentError as exc:
        raise InvalidFields.of([
            (["body", *(p for p in issue.path.split(".") if p != "document")], issue.message)
            for issue in exc.issues[:20]
        ]) from None
    # Defaults written out, absent sections left out: the stored text says exactly what holds.
    stored: dict[str, Any] = policy.model_dump(mode="json", exclude_none=True)
    return stored


def store_policy(state: StateStore, dataset_id: str, stored: dict[str, Any]) -> None:
    """Replace the dataset's policy; call inside the transaction that audits the change."""
    state.run("UPDATE datasets SET policy = ? WHERE id = ?",
              [json.dumps(stored, ensure_ascii=False), dataset_id])
