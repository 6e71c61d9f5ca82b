"""Post-loan monitoring for banks: watches over borrowers, and the alerts they raise.

Each alert was audited per subject when raised; reading alerts is audited as a release too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request

from saferoom.api.deps import operation
from saferoom.api.support import Cursor, Limit
from saferoom.recorder import Call
from saferoom.watches import WatchRequest, WatchService

router = APIRouter()


def _service(request: Request) -> WatchService:
    service: WatchService = request.app.state.watches
    return service


@router.post("/v1/watches", status_code=201)
def post_watch(
    body: WatchRequest, request: Request, call: Annotated[Call, operation("watch.create")]
) -> dict[str, Any]:
    """201 with the watch and its baseline counts; 403 for a rule the policy refuses; 422 for
    bad subjects, unknown datasets or fields, values of the wrong type."""
    assert call.principal is not None
    return _service(request).create(call.principal, body, call)


@router.get("/v1/watches")
def list_watches(
    request: Request,
    call: Annotated[Call, operation("watch.list")],
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> dict[str, Any]:
    """The caller's live watches, with the dataset versions each has evaluated."""
    assert call.principal is not None
    return _service(request).page(call.principal, cursor, limit, call)


@router.delete("/v1/watches/{watch_id}")
def delete_watch(
    watch_id: str, request: Request, call: Annotated[Call, operation("watch.delete")]
) -> dict[str, Any]:
    """End one of the caller's watches; another bank's, or an unknown id, is a 404."""
    assert call.principal is not None
    return _service(request).delete(call.principal, watch_id, call)


@router.get("/v1/alerts")
def list_alerts(
    request: Request,
    call: Annotated[Call, operation("alert.list")],
    limit: Limit = 100,
    cursor: Cursor = 0,
) -> dict[str, Any]:
    """`{"alerts": [{"uscc", "watch_id", "rule", "rule_index", "triggered_at"}], "next_cursor"}`."""
    assert call.principal is not None
    return _service(request).alerts(call.principal, cursor, limit, call)
