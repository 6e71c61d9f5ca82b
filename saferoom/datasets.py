"""Dataset operations shared by the HTTP routes and the demo: create, see, upload, describe.

Visibility: department datasets are seen by every non-enterprise role; a bank's only by it.
"""

from __future__ import annotations

import io
import secrets
from typing import Any, Literal

from policies.holdings import decide_dataset_change, may_see_dataset
from saferoom.auth import Principal
from saferoom.dataset_spec import DatasetCreate
from saferoom.errors import Conflict, NotFound
from saferoom.ingest import BatchValidator, Readable, read_csv, read_parquet
from saferoom.room import Room
from saferoom.state import DatasetRecord, utcnow

UploadFormat = Literal["csv", "parquet"]


def can_see(p: Principal, d: DatasetRecord) -> bool:
    return may_see_dataset(p.role, p.id, d.owner_id, d.owner_role)


def visible_dataset(room: Room, p: Principal, dataset_id: str) -> DatasetRecord:
    d = room.state.dataset(dataset_id)
    if d is None or not can_see(p, d):
        raise NotFound("no such dataset")
    return d


def owned_dataset(room: Room, p: Principal, dataset_id: str) -> DatasetRecord:
    d = visible_dataset(room, p, dataset_id)
    decide_dataset_change(p.id, d.owner_id).raise_if_denied()
    return d


def create_dataset(room: Room, owner: Principal, spec: DatasetCreate) -> DatasetRecord:
    if room.state.dataset_by_name(spec.name) is not None:
        raise Conflict("a dataset with this name exists", {"name": spec.name})
    dataset_id = "ds_" + secrets.token_hex(8)
    wrapped, data_key_id = room.datasets.new_data_key(dataset_id)
    record = DatasetRecord(
        id=dataset_id, name=spec.name, owner_id=owner.id, owner_role=owner.role,
        spec=spec.model_dump(mode="json"), version=0, rows=0, created_at=utcnow(),
        updated_at=None, data_key=wrapped, data_key_id=data_key_id, policy=None,
    )
    try:
        room.state.add_dataset(record)
    except Exception:  # the name raced another create
        raise Conflict("a dataset with this name exists", {"name": spec.name}) from None
    return record


def upload(
    room: Room, d: DatasetRecord, body: Readable | bytes, fmt: UploadFormat, *, append: bool
) -> tuple[int, int]:
    """Validate and seal a new version, all or nothing. -> (rows in the dataset, version)."""
    validator = BatchValidator(DatasetCreate.model_validate(d.spec))
    with room.datasets.upload_lock(d.id):
        current = room.state.dataset(d.id)
        assert current is not None
        if fmt == "parquet":
            batches = read_parquet(body if isinstance(body, bytes) else body.read(), validator)
        else:
            source = io.BytesIO(body) if isinstance(body, bytes) else body
            batches = read_csv(source, validator)
        return room.datasets.write_version(current, batches, append=append)


def describe(d: DatasetRecord) -> dict[str, Any]:
    """What anyone allowed to see a dataset may learn: schema, policy, counts; never rows."""
    return {
        "id": d.id,
        **d.spec,
        "owner": d.owner_id,
        "private": d.owner_role == "bank",
        "rows": d.rows,
        "version": d.version,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat() if d.updated_at else None,
        "policy": d.policy,
    }
