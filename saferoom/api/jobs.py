"""Joint modeling over HTTP: jobs (submit, dry-run, read, review, cancel), models and scores."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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


@router.get("/v1/jobs/{job_id}")
def get_job(job_id: str, request: Request,
            call: Annotated[Call, operation("job.read")]) -> dict[str, Any]:
    assert call.principal is not None
    service = _jobs(request)
    body = service.view(call.principal, service.visible(call.principal, job_id))
    call.record(resource=job_id, released=body)
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
                call: Annotated[Call, operation("model.score")]) -> JSONResponse:
    assert call.principal is not None
    scoring: ScoringService = request.app.state.scoring
    return JSONResponse(scoring.score(call.principal, model_id, body, call))
