"""The auditor's view of the log: events, signed checkpoints, consistency proofs, verification."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from audit.verify import verify_log
from saferoom.api.deps import RoomDep, operation
from saferoom.api.support import Cursor, Limit, instant, paged
from saferoom.errors import InvalidRequest
from saferoom.recorder import Call

router = APIRouter()


def _instant(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 time", {"parameter": name}) from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{name} needs a time zone (e.g. Z)", {"parameter": name})
    # Events carry RFC 3339 UTC times of one fixed width, so text order is time order.
    return instant(parsed)


@router.get("/v1/audit/events")
def get_events(
    call: Annotated[Call, operation("audit.read")],
    room: RoomDep,
    actor: str | None = None,
    subject: str | None = None,
    action: str | None = None,
    decision: Literal["allow", "deny"] | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> dict[str, Any]:
    events, next_cursor = paged(room.audit.events(
        actor=actor, subject=subject, action=action, decision=decision,
        since=_instant(since, "since"), until=_instant(until, "until"),
        after_seq=cursor, limit=limit + 1,
    ), limit, lambda e: e.seq)
    body = {"events": [e.to_dict() for e in events], "next_cursor": next_cursor}
    call.record(resource="audit/events", released=body)
    return body


@router.get("/v1/audit/checkpoints")
def get_checkpoints(
    call: Annotated[Call, operation("audit.read")], room: RoomDep,
) -> dict[str, Any]:
    body = {"checkpoints": [c.to_dict() for c in room.audit.checkpoints()]}
    call.record(resource="audit/checkpoints", released=body)
    return body


@router.get("/v1/audit/proof")
def get_proof(
    call: Annotated[Call, operation("audit.read")],
    room: RoomDep,
    from_size: int = Query(alias="from", ge=1),
) -> dict[str, Any]:
    size = room.audit.size
    if from_size > size:
        raise InvalidRequest("from is larger than the log", {"size": size})
    body = {
        "from": from_size,
        "to": size,
        "old_root": room.audit.root(from_size),
        "root": room.audit.root(size),
        "proof": room.audit.consistency_proof(from_size, size),
    }
    call.record(resource="audit/proof", released=body)
    return body


@router.get("/v1/audit/verify")
def get_verify(
    call: Annotated[Call, operation("audit.read")], room: RoomDep,
) -> dict[str, Any]:
    checkpoint = room.audit.checkpoint()
    report = verify_log(
        room.settings.data_dir / "audit", trusted_keys=(room.signer.public_key.hex(),)
    )
    body = {
        "ok": report.ok,
        "events": report.events,
        "head": report.head,
        "message": report.message,
        "checkpoint": checkpoint.to_dict(),
    }
    call.record(resource="audit/verify", released=body)
    return body
