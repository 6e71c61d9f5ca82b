"""A dataset's policy (owning department, or owning bank for its private data): put and get.

The document is api.md's `aggregate`/`verify`/`model` sections; an absent one forbids that use.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from saferoom import datasets as ops
from saferoom.api.deps import RoomDep, operation
from saferoom.dataset_policy import store_policy, validated_policy
from saferoom.recorder import Call
from saferoom.room import Room
from saferoom.state import DatasetRecord

router = APIRouter()


def set_policy(room: Room, call: Call, d: DatasetRecord, document: object) -> dict[str, Any]:
    """Validate, store and record the owner's policy for `d` together."""
    stored = validated_policy(d, document)
    body = {"dataset": d.name, "policy": stored}
    with room.state.transaction():
        store_policy(room.state, d.id, stored)
        call.record(resource=d.id, released=body)
    return body


@router.put("/v1/datasets/{dataset_id}/policy")
def put_policy(
    dataset_id: str,
    document: Annotated[Any, Body()],
    call: Annotated[Call, operation("policy.put")],
    room: RoomDep,
) -> dict[str, Any]:
    """Replace the policy -> 200 with it as stored (defaults written out); 422 names each bad path.

    Consents already granted keep their expiry; a request judged after this uses the new policy.
    """
    assert call.principal is not None
    return set_policy(room, call, ops.owned_dataset(room, call.principal, dataset_id), document)


@router.get("/v1/datasets/{dataset_id}/policy")
def get_policy(
    dataset_id: str,
    call: Annotated[Call, operation("policy.get")],
    room: RoomDep,
) -> dict[str, Any]:
    """The stored policy, or `"policy": null` when none was put (then the dataset allows no use)."""
    assert call.principal is not None
    d = ops.visible_dataset(room, call.principal, dataset_id)
    body = {"dataset": d.name, "policy": d.policy}
    call.record(resource=d.id, released=body)
    return body
