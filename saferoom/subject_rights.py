"""What the room holds about one enterprise, who accessed it, and correcting one of its fields.

Records are looked up by key in the engine's prepared copy of each dataset (decrypted once).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audit.events import AuditEvent
from saferoom.auth import ENV_ADMIN_ID
from saferoom.dataset_spec import DatasetCreate
from saferoom.errors import Conflict, InvalidData, InvalidFields
from saferoom.ingest import BatchValidator
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.query.exact import SourceVersion
from saferoom.room import Room
from saferoom.state import DatasetRecord

ENV_ADMIN_NAME = "admin (environment)"


def principal_names(room: Room, ids: Iterable[str | None]) -> dict[str, tuple[str, str]]:
    """`{id: (name, role)}` for the given principal ids, in one query."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = room.state.query(
        "SELECT id, name, role FROM principals WHERE id IN (SELECT unnest(?::VARCHAR[]))",
        [wanted],
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def _subject_mask(table: pa.Table, key: str, uscc: str) -> pa.ChunkedArray:
    return pc.fill_null(pc.equal(table[key], pa.scalar(uscc)), False)


def rows_about(
    engine: DuckDBEngine, d: DatasetRecord, uscc: str,
) -> tuple[int, list[dict[str, Any]]]:
    """The version held of a dataset and its rows whose key is `uscc` (key included)."""
    return engine.rows_about(SourceVersion(d.id, d.name, d.version),
                             DatasetCreate.model_validate(d.spec), uscc)


def records_about(room: Room, engine: DuckDBEngine, uscc: str) -> list[dict[str, Any]]:
    """Every record about `uscc`, per dataset, labelled with the dataset and who holds it.

    A bank's private dataset is held about the enterprise too, so it is listed as the bank's.
    """
    read = ((d, *rows_about(engine, d, uscc)) for d in room.state.datasets() if d.version)
    found = [(d, version, rows) for d, version, rows in read if rows]
    holders = principal_names(room, (d.owner_id for d, _, _ in found))
    out: list[dict[str, Any]] = []
    for d, version, rows in found:
        name, role = holders.get(d.owner_id, (d.owner_id, d.owner_role))
        out.append({"dataset": d.name, "description": d.spec.get("description", ""),
                    "held_by": {"id": d.owner_id, "name": name, "role": role},
                    "version": version, "records": rows})
    return out


def access_entry(event: AuditEvent, uscc: str, names: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """One audit event as its subject `uscc` sees it: who, what, why, when, with what outcome.

    Other subjects are left out, and so are the hashes and the release digest of an event that
    names others: they are computed over those subjects' ids and answers, and a short list of
    candidate firms could be tested against them.
    """
    known = names.get(event.actor or "")
    name = known[0] if known else (ENV_ADMIN_NAME if event.actor == ENV_ADMIN_ID else None)
    entry: dict[str, Any] = {
        "seq": event.seq, "ts": event.ts,
        "actor": {"id": event.actor, "name": name, "role": event.role},
        "action": event.action, "resource": event.resource, "purpose": event.purpose,
        "decision": event.decision, "reason": event.reason, "epsilon": event.epsilon,
    }
    if event.subjects == (uscc,):
        entry.update(digest=event.digest, hash=event.hash)
    return entry


def corrected_table(room: Room, d: DatasetRecord, uscc: str, field: str,
                    value: str | int | float | bool) -> pa.Table:
    """The current version of `d` with `field` set to `value` in every row about `uscc`.

    The value goes through the upload validator (type, domain), so a correction can hold only
    what an upload could; raises `InvalidFields` (nothing written) otherwise.
    """
    spec = DatasetCreate.model_validate(d.spec)
    column, key = spec.column(field), spec.column(spec.key)
    assert column is not None
    assert key is not None
    assert column.role != "key"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    probe = DatasetCreate(name=spec.name, key=spec.key, columns=[key, column])
    try:
        typed = BatchValidator(probe).convert(pa.record_batch(
            {spec.key: pa.array([uscc]), field: pa.array([text])}
        )).column(1)[0]
    except InvalidData:
        raise InvalidFields.at(["body", "corrected_value"],
                               f"not a valid value for {field} ({column.type})") from None
    table = room.datasets.read(d)
    mask = _subject_mask(table, spec.key, uscc)
    if not pc.any(mask).as_py():
        raise Conflict("the dataset no longer holds a record about this enterprise")
    index = table.schema.get_field_index(field)
    return table.set_column(index, table.schema.field(index),
                            pc.if_else(mask, typed, table[field]))
