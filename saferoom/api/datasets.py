"""Datasets: declare, upload (streamed, validated, sealed), describe, and mock rows."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from saferoom import datasets as ops
from saferoom.api.body_pipe import pump
from saferoom.api.deps import RoomDep, operation
from saferoom.dataset_spec import DatasetCreate
from saferoom.errors import UnsupportedMediaType
from saferoom.mock import MAX_MOCK_ROWS, mock_table
from saferoom.recorder import Call

router = APIRouter()
_FORMATS = {"text/csv": "csv", "application/vnd.apache.parquet": "parquet"}


@router.post("/v1/datasets", status_code=201)
def post_dataset(
    body: DatasetCreate,
    call: Annotated[Call, operation("dataset.create")],
    room: RoomDep,
) -> dict[str, Any]:
    assert call.principal is not None
    with room.state.transaction():
        d = ops.create_dataset(room, call.principal, body)
        view = ops.describe(d)
        call.record(resource=d.id, released=view)
    return view


@router.get("/v1/datasets")
def list_datasets(
    call: Annotated[Call, operation("dataset.list")], room: RoomDep,
) -> dict[str, Any]:
    assert call.principal is not None
    p = call.principal
    body = {"datasets": [ops.describe(d) for d in room.state.datasets() if ops.can_see(p, d)]}
    call.record(resource="datasets", released=body)
    return body


@router.get("/v1/datasets/{dataset_id}")
def get_dataset(
    dataset_id: str,
    call: Annotated[Call, operation("dataset.read")],
    room: RoomDep,
) -> dict[str, Any]:
    assert call.principal is not None
    d = ops.visible_dataset(room, call.principal, dataset_id)
    body = ops.describe(d)
    call.record(resource=d.id, released=body)
    return body


@router.put("/v1/datasets/{dataset_id}/data")
async def put_data(
    dataset_id: str,
    request: Request,
    call: Annotated[Call, operation("dataset.upload")],
    room: RoomDep,
    mode: Literal["replace", "append"] = "replace",
) -> dict[str, int]:
    assert call.principal is not None
    d = ops.owned_dataset(room, call.principal, dataset_id)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = _FORMATS.get(media)
    if fmt is None:
        raise UnsupportedMediaType(
            "upload text/csv or application/vnd.apache.parquet", {"accepted": list(_FORMATS)}
        )
    append = mode == "append"
    limit = room.settings.max_upload_bytes
    if fmt == "parquet":
        # Parquet's footer comes last, so the file is parsed from memory, not a stream.
        rows, version = await pump(
            request.stream(), limit,
            lambda pipe: ops.upload(room, d, pipe.read(), "parquet", append=append),
        )
    else:
        rows, version = await pump(
            request.stream(), limit, lambda pipe: ops.upload(room, d, pipe, "csv", append=append)
        )
    result = {"rows": rows, "version": version}
    await asyncio.to_thread(call.record, resource=d.id, released=result)
    return result


@router.get("/v1/datasets/{dataset_id}/mock")
def get_mock(
    dataset_id: str,
    call: Annotated[Call, operation("dataset.mock")],
    room: RoomDep,
    rows: int = Query(default=100, ge=1, le=MAX_MOCK_ROWS),
) -> dict[str, Any]:
    assert call.principal is not None
    d = ops.visible_dataset(room, call.principal, dataset_id)
    table = mock_table(DatasetCreate.model_validate(d.spec), rows)
    body = {
        "dataset": d.name,
        "synthetic": True,
        "columns": table.column_names,
        "rows": [list(r.values()) for r in table.to_pylist()],
    }
    call.record(resource=d.id, released=body)
    return body
