"""Data-sharing agreements (admin): create, list, end; a bank lists its own, auditors all.

An agreement fixes scope and use: a bank uses a dataset only for a purpose a live one names.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from policies.consent import Instant
from policies.documents import unique_items
from policies.facts import Agreement
from policies.names import DatasetName, Purpose
from saferoom.api.deps import RoomDep, operation
from saferoom.api.support import instant
from saferoom.errors import InvalidFields, NotFound
from saferoom.recorder import Call
from saferoom.room import Room
from saferoom.state import utcnow

router = APIRouter()
_Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]


class AgreementCreate(BaseModel):
    """`POST /v1/agreements`: this bank may use these datasets for these purposes until then."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bank_id: _Id
    datasets: Annotated[list[DatasetName], Field(min_length=1, max_length=256)]
    purposes: Annotated[list[Purpose], Field(min_length=1, max_length=64)]
    valid_until: Instant

    _unique_lists = field_validator("datasets", "purposes")(unique_items)


def agreement_view(a: Agreement) -> dict[str, Any]:
    now = utcnow()
    status = "ended" if a.ended_at is not None and a.ended_at <= now else (
        "active" if a.is_live(now) else "expired")
    return {"id": a.id, "bank_id": a.bank_id, "datasets": sorted(a.datasets),
            "purposes": sorted(a.purposes), "valid_until": instant(a.valid_until),
            "ended_at": instant(a.ended_at), "status": status}


def add_agreement(room: Room, call: Call, body: AgreementCreate) -> dict[str, Any]:
    """Check the bank and datasets exist, then store and record the agreement together.

    Only department datasets can be shared: a bank's private data stays with that bank.
    """
    problems: list[tuple[list[str | int], str]] = []
    if not room.state.principal_exists(body.bank_id, "bank"):
        problems.append((["body", "bank_id"], "no bank has this id"))
    for i, name in enumerate(body.datasets):
        d = room.state.dataset_by_name(name)
        if d is None or d.owner_role != "department":
            problems.append((["body", "datasets", i], "no department dataset has this name"))
    if problems:
        raise InvalidFields.of(problems)
    if body.valid_until <= utcnow():
        raise InvalidFields.at(["body", "valid_until"], "must be in the future")
    agreement = Agreement(id="agr_" + secrets.token_hex(8), bank_id=body.bank_id,
                          datasets=frozenset(body.datasets), purposes=frozenset(body.purposes),
                          valid_until=body.valid_until)
    view = agreement_view(agreement)
    with room.state.transaction():
        room.agreements.add(agreement, utcnow())
        call.record(resource=agreement.id, released=view)
    return view


@router.post("/v1/agreements", status_code=201)
def post_agreement(
    body: AgreementCreate,
    call: Annotated[Call, operation("agreement.create")],
    room: RoomDep,
) -> dict[str, Any]:
    return add_agreement(room, call, body)


@router.get("/v1/agreements")
def list_agreements(
    call: Annotated[Call, operation("agreement.list")], room: RoomDep,
) -> dict[str, Any]:
    assert call.principal is not None
    p = call.principal
    found = room.agreements.for_bank(p.id) if p.role == "bank" else room.agreements.all()
    body = {"agreements": [agreement_view(a) for a in found]}
    call.record(resource="agreements", released=body)
    return body


@router.post("/v1/agreements/{agreement_id}/end")
def end_agreement(
    agreement_id: str,
    call: Annotated[Call, operation("agreement.end")],
    room: RoomDep,
) -> dict[str, Any]:
    """End an agreement now -> 200 with `"status": "ended"`; ending it again changes nothing.

    Every request that starts from this instant on is judged without it. The terms stay on
    record (hence an action, not a DELETE).
    """
    with room.state.transaction():
        ended = room.agreements.end(agreement_id, utcnow())
        if ended is None:
            raise NotFound("no such agreement")
        view = agreement_view(ended)
        call.record(resource=ended.id, released=view)
    return view
