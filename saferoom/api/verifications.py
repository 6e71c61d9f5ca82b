"""Verification for banks: yes/no answers about consenting enterprises, in batches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from saferoom.api.batch_json import BatchJSONResponse
from saferoom.api.deps import operation
from saferoom.recorder import Call
from saferoom.verification import VerificationRequest, VerificationService

router = APIRouter()


@router.post("/v1/verifications")
def post_verifications(
    body: VerificationRequest, request: Request, call: Annotated[Call, operation("verify")]
) -> BatchJSONResponse:
    assert call.principal is not None
    service: VerificationService = request.app.state.verifications
    # Up to 100,000 answers: serialised directly, not walked by FastAPI's generic encoder.
    return BatchJSONResponse(service.verify(call.principal, body, call))
