"""Principals (admin creates them), `GET /v1/me`, and the room's public keys."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from saferoom import uscc
from saferoom.api.deps import RoomDep, operation
from saferoom.auth import Principal, issue_token
from saferoom.errors import Conflict
from saferoom.recorder import Call
from saferoom.room import Room
from saferoom.state import PrincipalRecord

router = APIRouter()


class PrincipalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["department", "bank", "enterprise", "auditor", "admin"]
    name: str = Field(min_length=1, max_length=200)
    uscc: str | None = None

    @model_validator(mode="after")
    def _uscc_for_enterprises(self) -> Self:
        if self.role == "enterprise":
            if self.uscc is None or not uscc.is_valid(self.uscc):
                raise ValueError("an enterprise needs a valid 18-character unified social "
                                 "credit code (uscc)")
        elif self.uscc is not None:
            raise ValueError("only an enterprise has a uscc")
        return self


def create_principal(room: Room, body: PrincipalCreate) -> tuple[dict[str, Any], str]:
    """Store a principal and return its public view and its token (shown only once)."""
    if body.uscc is not None and room.state.uscc_taken(body.uscc):
        raise Conflict("an enterprise with this uscc exists")
    token = issue_token()
    record = PrincipalRecord(
        id=f"{body.role[:3]}_{secrets.token_hex(6)}", role=body.role, name=body.name,
        uscc=body.uscc, token_id=token.token_id, token_hash=token.token_hash,
    )
    room.state.add_principal(record)
    return Principal(record.id, body.role, record.name, record.uscc).public(), token.token


@router.post("/v1/principals", status_code=201)
def post_principal(
    body: PrincipalCreate,
    call: Annotated[Call, operation("principal.create")],
    room: RoomDep,
) -> dict[str, Any]:
    with room.state.transaction():
        view, token = create_principal(room, body)
        call.record(resource=view["id"], subjects=[body.uscc] if body.uscc else [],
                    released=view)
    return {**view, "token": token}


@router.get("/v1/me")
def get_me(call: Annotated[Call, operation("me.read")]) -> dict[str, str]:
    assert call.principal is not None
    body = call.principal.public()
    call.record(resource="me", released=body)
    return body


@router.get("/v1/keys")
def get_keys(response: Response, room: RoomDep) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return {
        "keys": [
            {
                "alg": "Ed25519",
                "public_key": room.signer.public_key.hex(),
                "use": ["audit-checkpoint", "consent-receipt"],
            }
        ]
    }
