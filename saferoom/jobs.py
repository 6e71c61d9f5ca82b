"""The job service: submit, review, queue, run, cancel, and dry-run joint-modeling jobs.

Jobs run one at a time by default (2 cores); a job cut off by a stop fails and can be resent.
"""

from __future__ import annotations

import builtins
import logging
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.errors import PolicyDenied
from saferoom.auth import Principal
from saferoom.dataset_spec import DatasetCreate
from saferoom.errors import Conflict, NotFound
from saferoom.job_store import Job, JobStore, Status
from saferoom.model_store import Model, ModelStore
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.query.exact import SourceVersion
from saferoom.recorder import Call
from saferoom.room import Room
from saferoom.state import utcnow
from saferoom.training import (
    JobRequest,
    ResolvedJob,
    check_size,
    code_digest,
    decide,
    mock_frame,
    new_id,
    real_frame,
    resolve,
    reviewers,
    train,
)
from sandbox import JailUnavailable, Runner

log = logging.getLogger("saferoom.jobs")


# Names an exception's type may have and still reach the bank: the code chooses its own class
# names (`type("v" + value, (Exception,), {})`), so only these can carry no data.
RELEASABLE_ERRORS = frozenset(
    {name for name, value in vars(builtins).items()
     if isinstance(value, type) and issubclass(value, BaseException)} | {"UserCodeError"})


def released_error_kind(jail_error: str | None) -> str | None:
    """The exception type of a failed job, when it may be told to the bank (never its message,
    which may quote data)."""
    kind = (jail_error or "").split(":", 1)[0].strip()
    return kind if kind in RELEASABLE_ERRORS else None


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=4000)


def _request_of(job: Job) -> JobRequest:
    return JobRequest.model_validate({
        "purpose": job.purpose, "template": job.template, "code": job.code,
        "features": list(job.features), "label": job.label, "params": job.params})


class JobService:
    def __init__(self, room: Room, engine: DuckDBEngine, runner: Runner | None) -> None:
        self._room = room
        self._engine = engine
        self._runner = runner  # None: the jail failed its start check, so no job may run
        self.jobs = JobStore(room.state, room.master)
        self.models = ModelStore(room.state, room.master, room.settings.data_dir / "models")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # -- submission -------------------------------------------------------------------------
    def _runner_or_refuse(self) -> Runner:
        if self._runner is None:
            raise JailUnavailable("the jail is not available here, so no code may run")
        return self._runner

    def submit(self, principal: Principal, request: JobRequest, call: Call) -> dict[str, Any]:
        self._runner_or_refuse()
        now = utcnow()
        job = resolve(self._room, principal, request)
        custom = request.code is not None
        decision = decide(self._room, principal, request.purpose, job, custom_code=custom,
                          approved=False, now=now)
        if not decision.allowed and decision.code != "review_required":
            decision.raise_if_denied()
        check_size(job, self._engine.frame(
            {job.label.dataset: self._source(job, job.label.dataset)}, [job.label],
            base=job.label.dataset, marks=False))
        status: Status = "pending_review" if decision.code == "review_required" else "queued"
        record = Job(
            id=new_id("job"), bank_id=principal.id, purpose=request.purpose,
            template=request.template, code=request.code, features=tuple(request.features),
            label=request.label, params=request.params, status=status, error=None,
            metrics=None, model_id=None,
            reviewers=reviewers(job) if status == "pending_review" else (),
            cancel_requested=False, created_at=now, updated_at=now,
        )
        self.jobs.add(record)
        body = {"id": record.id, "status": status}
        call.record(resource=record.id, purpose=request.purpose, released=body)
        self._wake.set()
        return body

    def _source(self, job: ResolvedJob, name: str) -> tuple[SourceVersion, DatasetCreate]:
        d = job.records[name]
        return SourceVersion(d.id, name, d.version), job.schema(name)

    # -- reading ----------------------------------------------------------------------------
    def visible(self, principal: Principal, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or not (job.bank_id == principal.id or principal.id in job.reviewers):
            raise NotFound("no such job")
        return job

    def view(self, principal: Principal, job: Job) -> dict[str, Any]:
        """The bank sees status and metrics; a reviewing department also the code and logs."""
        body: dict[str, Any] = {"id": job.id, "status": job.status, "purpose": job.purpose,
                                "template": job.template or "custom",
                                "features": list(job.features), "label": job.label,
                                "created_at": job.created_at.isoformat()}
        for name in ("metrics", "model_id", "error"):
            if getattr(job, name) is not None:
                body[name] = getattr(job, name)
        if job.reviewers:
            body["reviews"] = self.jobs.reviews(job.id)
        if principal.id in job.reviewers:
            body["code"] = job.code
            body["logs"] = self.jobs.logs(job.id)
        return body

    # -- review and cancel ------------------------------------------------------------------
    def review(self, principal: Principal, job_id: str, review: ReviewRequest, call: Call
               ) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None or principal.id not in job.reviewers:
            raise NotFound("no such job")
        if job.status != "pending_review":
            raise Conflict("the job is not waiting for review", {"status": job.status})
        self.jobs.add_review(job.id, principal.id, review.decision, review.reason)
        decided = {r["department"]: r["decision"] for r in self.jobs.reviews(job.id)}
        if review.decision == "reject":
            self.jobs.set_status(job.id, "rejected", expect=["pending_review"],
                                 error=f"rejected by a reviewing department: {review.reason}")
        elif all(decided.get(d) == "approve" for d in job.reviewers):
            self.jobs.set_status(job.id, "queued", expect=["pending_review"])
            self._wake.set()
        fresh = self.jobs.get(job.id)
        assert fresh is not None
        body = {"id": job.id, "status": fresh.status}
        call.record(resource=job.id, reason=review.decision, released=body)
        return body

    def cancel(self, principal: Principal, job_id: str, call: Call) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None or job.bank_id != principal.id:
            raise NotFound("no such job")
        if job.status in ("pending_review", "queued"):
            self.jobs.set_status(job.id, "cancelled", expect=["pending_review", "queued"])
        elif job.status == "running":
            self.jobs.request_cancel(job.id)  # its result is discarded when the jail returns
        else:
            raise Conflict("the job has already finished", {"status": job.status})
        body = {"id": job.id, "status": "cancelled"}
        call.record(resource=job.id, released=body)
        return body

    # -- dry run ----------------------------------------------------------------------------
    def dry_run(self, principal: Principal, request: JobRequest, call: Call) -> dict[str, Any]:
        """On mock rows only, so the bank may see everything, printed output included."""
        runner = self._runner_or_refuse()
        job = resolve(self._room, principal, request)
        run = train(runner, mock_frame(job), job, request.model_dump(), dry_run=True)
        body: dict[str, Any] = {
            "status": "succeeded" if run.failure is None else "failed",
            "metrics": run.metrics, "stdout": run.result.stdout, "stderr": run.result.stderr,
        }
        if run.failure is not None:
            body["error"] = run.failure + (f": {run.result.error}" if run.result.error else "")
        call.record(resource="mock", purpose=request.purpose, released=body)
        return body

    # -- the worker -------------------------------------------------------------------------
    def start(self) -> None:
        failed = self.jobs.fail_interrupted()
        if failed:
            log.warning("marked %d interrupted jobs failed", failed)
        self._worker = threading.Thread(target=self._loop, name="job-worker", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.jobs.next_queued()
            if job is None:
                self._wake.wait(timeout=5)
                self._wake.clear()
                continue
            if self.jobs.set_status(job.id, "running", expect=["queued"]):
                try:
                    self.run_one(job)
                except Exception as exc:  # a failed job must never stop the worker
                    log.error("job failed unexpectedly: %s", type(exc).__name__)
                    self.jobs.set_status(job.id, "failed", error="internal error")

    def run_one(self, job: Job) -> None:
        """Decide again (agreements may have ended), train on real data, keep the model."""
        runner = self._runner_or_refuse()
        bank = Principal(job.bank_id, "bank", "")
        call = self._room.call("job.run", bank)
        request = _request_of(job)
        try:
            resolved = resolve(self._room, bank, request)
            decide(self._room, bank, job.purpose, resolved, custom_code=job.code is not None,
                   approved=True, now=utcnow()).raise_if_denied()
            frame = real_frame(self._engine, resolved)
            # Again on the data trained on: the labels may have changed while the job waited.
            check_size(resolved, frame)
        except (PolicyDenied, NotFound) as exc:
            reason = getattr(exc, "code", "not_found")
            self.jobs.set_status(job.id, "failed", error=f"refused when due to run: {reason}")
            call.record(resource=job.id, purpose=job.purpose, decision="deny", reason=reason)
            return
        run = train(runner, frame, resolved, request.model_dump(), dry_run=False)
        # What the code printed may echo data: kept sealed for the reviewing department only.
        self.jobs.keep_logs(job.id, run.result.stdout, run.result.stderr)
        fresh = self.jobs.get(job.id)
        if fresh is not None and fresh.cancel_requested:
            self.jobs.set_status(job.id, "cancelled", expect=["running"])
            call.record(resource=job.id, purpose=job.purpose, decision="deny", reason="cancelled")
            return
        if run.failure is not None or run.metrics is None or run.artifact is None:
            kind = released_error_kind(run.result.error)
            error = run.failure or "the job failed"
            self.jobs.set_status(job.id, "failed", expect=["running"],
                                 error=error + (f" ({kind})" if kind else ""))
            call.record(resource=job.id, purpose=job.purpose, decision="deny", reason="failed")
            return
        model = Model(
            id=new_id("mdl"), bank_id=job.bank_id, job_id=job.id, template=job.template,
            code=job.code, code_digest=code_digest(job.code), features=job.features,
            label=job.label,
            lineage={"datasets": {n: d.version for n, d in resolved.records.items()},
                     "job": job.id, "code_digest": code_digest(job.code)},
            metrics=run.metrics, created_at=utcnow(),
        )
        self.models.add(model, run.artifact)
        call.record(resource=job.id, purpose=job.purpose, released=run.metrics)
        self.jobs.set_status(job.id, "succeeded", expect=["running"], metrics=run.metrics,
                             model_id=model.id)
        log.info("job trained: %d rows, auc %s", run.metrics["n_train"], run.metrics["auc"])

    def model_list(self, principal: Principal) -> dict[str, Any]:
        return {"models": [m.public() for m in self.models.for_bank(principal.id)]}

    def job_list(self, principal: Principal) -> dict[str, Any]:
        jobs = (self.jobs.for_bank(principal.id) if principal.role == "bank"
                else self.jobs.for_reviewer(principal.id))
        return {"jobs": [self.view(principal, j) for j in jobs]}
