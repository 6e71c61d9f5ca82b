"""Objections: an enterprise disputes a field of a record about it; the owning department rules.

Upheld with a corrected value writes a new dataset version through the validated, sealed path.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from policies.holdings import decide_objection_target
from policies.names import DatasetName, FieldName
from saferoom.api.deps import EngineDep, RoomDep, operation
from saferoom.api.subject import subject_of
from saferoom.api.support import Cursor, Limit, instant, paged
from saferoom.errors import Conflict, InvalidFields, NotFound
from saferoom.objection_store import Objection
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.recorder import Call
from saferoom.room import Room
from saferoom.state import utcnow
from saferoom.subject_rights import corrected_table, rows_about

router = APIRouter()
_Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1,
                                         max_length=2000)]


class ObjectionRequest(BaseModel):
    """`POST /v1/objections`: this field of my record in this dataset is wrong, because…"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: DatasetName
    field: FieldName
    claim: _Text


class ResolutionRequest(BaseModel):
    """`POST /v1/objections/{id}/resolution`: upheld (optionally with the corrected value) or
    rejected, which needs a reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Literal["upheld", "rejected"]
    corrected_value: Annotated[str, StringConstraints(strict=True, max_length=2000)] | StrictBool \
        | StrictInt | Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = None
    reason: _Text | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.decision == "rejected" and self.reason is None:
            raise ValueError("a rejection needs a reason")
        if self.decision == "rejected" and self.corrected_value is not None:
            raise ValueError("only an upheld objection carries a corrected value")
        return self


def objection_view(o: Objection) -> dict[str, Any]:
    return {"id": o.id, "subject": o.subject_uscc, "dataset": o.dataset, "field": o.field,
            "claim": o.claim, "status": o.status, "filed_at": instant(o.filed_at),
            "resolved_at": instant(o.resolved_at), "reason": o.reason,
            "corrected": o.corrected_version is not None,
            "dataset_version": o.corrected_version}


def file_objection(room: Room, engine: DuckDBEngine, call: Call, uscc: str,
                   body: ObjectionRequest) -> Objection:
    """Store and record an objection; the dataset must be a department's holding a record about
    `uscc` (else 404, as for an unknown name) and name the field (else 422)."""
    d = room.state.dataset_by_name(body.dataset)
    rows: list[dict[str, Any]] = []
    if d is not None and d.version:
        _, rows = rows_about(engine, d, uscc)
    if d is None or not rows:
        raise NotFound("no record about you in such a dataset")
    decide_objection_target(d.owner_role).raise_if_denied()
    column = next((c for c in d.spec["columns"] if c["name"] == body.field), None)
    if column is None or column["role"] == "key":
        raise InvalidFields.at(["body", "field"], "the dataset has no such field")
    with room.state.transaction():
        o = room.objections.add("obj_" + secrets.token_hex(8), uscc, d, body.field, body.claim,
                                utcnow())
        call.record(resource=o.id, subjects=[uscc], released=objection_view(o))
    return o


def resolve_objection(room: Room, call: Call, objection_id: str,
                      body: ResolutionRequest) -> Objection:
    """Rule on an open objection on one of the caller's datasets (any other id is a 404).

    The correction is validated and sealed as a new version before the objection is closed;
    the dataset's upload lock keeps a concurrent upload or ruling from interleaving.
    """
    p = call.principal
    assert p is not None
    o = room.objections.get(objection_id)
    d = None if o is None else room.state.dataset(o.dataset_id)
    if o is None or d is None or d.owner_id != p.id:
        raise NotFound("no such objection")
    with room.datasets.upload_lock(d.id):
        o = room.objections.get(o.id)
        current = room.state.dataset(d.id)
        assert o is not None
        assert current is not None
        if o.status != "open":
            raise Conflict("this objection is already resolved", {"status": o.status})
        version = None
        if body.decision == "upheld" and body.corrected_value is not None:
            table = corrected_table(room, current, o.subject_uscc, o.field, body.corrected_value)
            _, version = room.datasets.write_version(current, table.to_batches(), append=False)
        with room.state.transaction():
            resolved = room.objections.resolve(o, current, body.decision, body.reason, p.id,
                                               utcnow(), version)
            assert resolved is not None  # the lock is held and it was open
            call.record(resource=o.id, subjects=[o.subject_uscc],
                        released=objection_view(resolved))
    return resolved


@router.post("/v1/objections", status_code=201)
def post_objection(
    body: ObjectionRequest,
    call: Annotated[Call, operation("objection.file")],
    room: RoomDep,
    engine: EngineDep,
) -> dict[str, Any]:
    """File -> 201 with the objection (`status: open`)."""
    return objection_view(file_objection(room, engine, call, subject_of(call), body))


@router.get("/v1/objections")
def list_objections(
    call: Annotated[Call, operation("objection.list")],
    room: RoomDep,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> dict[str, Any]:
    """An enterprise's own objections with their outcome, or those on a department's datasets."""
    p = call.principal
    assert p is not None
    if p.role == "enterprise":
        fetched = room.objections.page(subject=subject_of(call), after=cursor, limit=limit + 1)
    else:
        fetched = room.objections.page(owner=p.id, after=cursor, limit=limit + 1)
    found, next_cursor = paged(fetched, limit, lambda o: o.seq)
    body = {"objections": [objection_view(o) for o in found], "next_cursor": next_cursor}
    call.record(resource="objections", subjects=sorted({o.subject_uscc for o in found}),
                released=body)
    return body


@router.post("/v1/objections/{objection_id}/resolution")
def post_resolution(
    objection_id: str,
    body: ResolutionRequest,
    call: Annotated[Call, operation("objection.resolve")],
    room: RoomDep,
) -> dict[str, Any]:
    """Resolve -> 200 with the outcome; 409 if already resolved; 422 for a value the column
    cannot hold (nothing written)."""
    return objection_view(resolve_objection(room, call, objection_id, body))
