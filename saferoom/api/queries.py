"""Differentially private aggregate queries for banks, their previews, and budgets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request

from saferoom.api.deps import operation
from saferoom.query.service import QueryRequest, QueryService
from saferoom.recorder import Call

router = APIRouter()


def _service(request: Request) -> QueryService:
    service: QueryService = request.app.state.queries
    return service


@router.post("/v1/queries")
def post_query(
    body: QueryRequest, request: Request, call: Annotated[Call, operation("query")]
) -> dict[str, Any]:
    assert call.principal is not None
    return _service(request).run(call.principal, body, call)


@router.post("/v1/queries/preview")
def post_preview(
    body: QueryRequest, request: Request, call: Annotated[Call, operation("query.preview")]
) -> dict[str, Any]:
    assert call.principal is not None
    return _service(request).preview(call.principal, body, call)


@router.get("/v1/budgets")
def get_budgets(
    request: Request, call: Annotated[Call, operation("budget.read")]
) -> dict[str, Any]:
    assert call.principal is not None
    return _service(request).budgets(call.principal)
