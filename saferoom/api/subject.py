"""Subject rights (enterprise): every record held about the caller, and every access to it.

Free and unconditional for the subject itself; each read is audited with the caller as subject.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from policies.decisions import decide_self_query
from policies.facts import Actor
from saferoom.api.deps import EngineDep, RoomDep, operation
from saferoom.api.support import Cursor, Limit, paged, refuse
from saferoom.recorder import Call
from saferoom.subject_rights import access_entry, principal_names, records_about

router = APIRouter()


def subject_of(call: Call) -> str:
    """The caller's uscc, once `policies` agrees it may read about itself."""
    p = call.principal
    assert p is not None
    decision = decide_self_query(Actor(p.id, p.role, p.uscc))
    if not decision.allowed or p.uscc is None:
        refuse(call, decision)
    return p.uscc


@router.get("/v1/me/data")
def get_my_data(call: Annotated[Call, operation("me.data")], room: RoomDep,
                engine: EngineDep) -> dict[str, Any]:
    """`{"uscc", "datasets": [{"dataset", "description", "held_by", "version", "records"}]}`."""
    uscc = subject_of(call)
    body = {"uscc": uscc, "datasets": records_about(room, engine, uscc)}
    call.record(resource="me/data", subjects=[uscc], released=body)
    return body


@router.get("/v1/me/access-log")
def get_my_access_log(
    call: Annotated[Call, operation("me.access_log")],
    room: RoomDep,
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> dict[str, Any]:
    """Events naming the caller, oldest first: actor (id, name, role), action, purpose, time,
    decision. Never another subject's id; `next_cursor` pages on."""
    uscc = subject_of(call)
    events, next_cursor = paged(room.audit.events(subject=uscc, after_seq=cursor,
                                                  limit=limit + 1), limit, lambda e: e.seq)
    names = principal_names(room, (e.actor for e in events))
    body = {"events": [access_entry(e, uscc, names) for e in events],
            "next_cursor": next_cursor}
    call.record(resource="me/access-log", subjects=[uscc], released=body)
    return body
