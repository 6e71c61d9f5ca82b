"""Request dependencies: the room, and the authenticated, role-checked, audited call.

`operation("dataset.create")` is the one gate every `/v1` route passes before doing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from policies.roles import authorize_role
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.recorder import Call
from saferoom.room import Room

_bearer = HTTPBearer(auto_error=False, description="A SafeRoom token: sr_<id>.<secret>")


def get_room(request: Request) -> Room:
    room: Room = request.app.state.room
    return room


RoomDep = Annotated[Room, Depends(get_room)]


def get_engine(request: Request) -> DuckDBEngine:
    engine: DuckDBEngine = request.app.state.engine
    return engine


EngineDep = Annotated[DuckDBEngine, Depends(get_engine)]


def operation(name: str) -> Any:
    """Authenticate, then check the role may perform `name`; both failures are audited."""

    def gate(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Call:
        room = get_room(request)
        call = room.call(name)
        request.state.call = call  # the error handlers record denials against this call
        header = f"Bearer {credentials.credentials}" if credentials else None
        call.principal = room.auth.authenticate(header)
        authorize_role(call.principal.role, name)
        return call

    dependency: Callable[..., Call] = gate
    return Depends(dependency)
