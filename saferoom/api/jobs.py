"""Joint modeling over HTTP: jobs (submit, dry-run, read, review, cancel), models and scores."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from saferoom.api.batch_json import BatchJSONResponse
from saferoom.api.deps import operation
from saferoom.jobs import JobService, ReviewRequest
from saferoom.recorder import Call
from saferoom.scoring import ScoreRequest, ScoringService
from saferoom.training import JobRequest

router = APIRouter()


def _jobs(request: Request) -> JobService:
    service: JobService = request.app.state.jobs
    return service


@router.post("/v1/jobs", status_code=202)
def post_job(body: JobRequest, request: Request,
             call: Annotated[Call, operation("job.submit")]) -> dict[str, Any]:
    assert call.principal is not None
    return _jobs(request).submit(call.principal, body, call)


@router.post("/v1/jobs/dry-run")
def post_dry_run(body: JobRequest, request: Request,
                 call: Annotated[Call, operation("job.dry_run")]) -> dict[str, Any]:
    assert call.principal is not None
    return _jobs(request).dry_run(call.principal, body, call)


@router.get("/v1/jobs")
def list_jobs(request: Request, call: Annotated[Call, operation("job.read")]) -> dict[str, Any]:
    assert call.principal is not None
    body = _jobs(request).job_list(call.principal)
    call.record(resource="jobs", released=body)
    return body


MAX_WAIT_S = 30
WAIT_STEP_S = 0.01


@router.get("/v1/jobs/{job_id}")
async def get_job(
    job_id: str, request: Request, call: Annotated[Call, operation("job.read")],
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for the "
                                 "status to change before answering")] = 0,
) -> dict[str, Any]:
    """With `wait`, a long poll: answers as soon as the status moves on, or after `wait` s.
    It waits on the event loop, so waiting readers hold no worker thread."""
    assert call.principal is not None
    principal = call.principal
    service = _jobs(request)
    job = await run_in_threadpool(service.visible, principal, job_id)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        seen = service.jobs.changes
        while service.jobs.changes == seen and time.monotonic() < deadline:
            await asyncio.sleep(WAIT_STEP_S)
        fresh = await run_in_threadpool(service.visible, principal, job_id)
        if fresh.status != job.status:
            job = fresh
            break
    body = await run_in_threadpool(service.view, principal, job)
    await run_in_threadpool(call.record, resource=job_id, released=body)
    return body


@router.post("/v1/jobs/{job_id}/review")
def post_review(job_id: str, body: ReviewRequest, request: Request,
                call: Annotated[Call, operation("job.review")]) -> dict[str, Any]:
    assert call.principal is not None
    return _jobs(request).review(call.principal, job_id, body, call)


@router.post("/v1/jobs/{job_id}/cancel")
def post_cancel(job_id: str, request: Request,
                call: Annotated[Call, operation("job.cancel")]) -> dict[str, Any]:
    assert call.principal is not None
    return _jobs(request).cancel(call.principal, job_id, call)


@router.get("/v1/models")
def list_models(request: Request,
                call: Annotated[Call, operation("model.list")]) -> dict[str, Any]:
    assert call.principal is not None
    body = _jobs(request).model_list(call.principal)
    call.record(resource="models", released=body)
    return body


@router.post("/v1/models/{model_id}/scores")
def post_scores(model_id: str, body: ScoreRequest, request: Request,
                call: Annotated[Call, operation("model.score")]) -> BatchJSONResponse:
    assert call.principal is not None
    scoring: ScoringService = request.app.state.scoring
    return BatchJSONResponse(scoring.score(call.principal, model_id, body, call))
