"""Training jobs and their reviews in the state DB: what was asked, its status, its outcome.

Logs (what the code printed) may echo data values: they are kept sealed under the master key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from saferoom.crypto import MasterKey
from saferoom.state import StateStore, utcnow

Status = Literal["pending_review", "queued", "running", "succeeded", "failed", "rejected",
                 "cancelled"]
SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS job_seq;
CREATE TABLE IF NOT EXISTS jobs (
    seq BIGINT NOT NULL DEFAULT nextval('job_seq'), id VARCHAR PRIMARY KEY,
    bank_id VARCHAR NOT NULL, purpose VARCHAR NOT NULL, template VARCHAR, code VARCHAR,
    features VARCHAR[] NOT NULL, label VARCHAR NOT NULL, params JSON NOT NULL,
    status VARCHAR NOT NULL, error VARCHAR, metrics JSON, model_id VARCHAR,
    reviewers VARCHAR[] NOT NULL, logs BLOB, cancel_requested BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS job_reviews (
    job_id VARCHAR NOT NULL, department_id VARCHAR NOT NULL, decision VARCHAR NOT NULL,
    reason VARCHAR NOT NULL, reviewed_at TIMESTAMPTZ NOT NULL);
"""
_COLUMNS = ("id, bank_id, purpose, template, code, features, label, params, status, error, "
            "metrics, model_id, reviewers, cancel_requested, created_at, updated_at")
_SELECT = f"SELECT {_COLUMNS} FROM jobs"  # noqa: S608 (constants only)


def job_logs_context(job_id: str) -> str:
    return f"job-logs|{job_id}"


@dataclass(frozen=True)
class Job:
    id: str
    bank_id: str
    purpose: str
    template: str | None
    code: str | None
    features: tuple[str, ...]
    label: str
    params: dict[str, Any]
    status: Status
    error: str | None
    metrics: dict[str, Any] | None
    model_id: str | None
    reviewers: tuple[str, ...]  # departments whose approval custom code needs
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime


def _job(r: Sequence[Any]) -> Job:
    return Job(r[0], r[1], r[2], r[3], r[4], tuple(r[5]), r[6], json.loads(r[7]), r[8], r[9],
               json.loads(r[10]) if r[10] is not None else None, r[11], tuple(r[12]), r[13],
               r[14], r[15])


class JobStore:
    def __init__(self, state: StateStore, master: MasterKey) -> None:
        self._state = state
        self._master = master
        # Moves on whenever a job's status does: a waiting reader re-reads only then.
        self.changes = 0
        state.ensure_schema(SCHEMA)

    def add(self, job: Job) -> None:
        self._state.run(
            f"INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            [job.id, job.bank_id, job.purpose, job.template, job.code, list(job.features),
             job.label, json.dumps(job.params), job.status, job.error,
             json.dumps(job.metrics) if job.metrics is not None else None, job.model_id,
             list(job.reviewers), job.cancel_requested, job.created_at, job.updated_at],
        )

    def get(self, job_id: str) -> Job | None:
        rows = self._state.query(_SELECT + " WHERE id = ?", [job_id])
        return _job(rows[0]) if rows else None

    def for_bank(self, bank_id: str) -> list[Job]:
        return [_job(r) for r in self._state.query(_SELECT + " WHERE bank_id = ? ORDER BY seq",
                                                    [bank_id])]

    def for_reviewer(self, department_id: str) -> list[Job]:
        rows = self._state.query(_SELECT + " WHERE list_contains(reviewers, ?) ORDER BY seq",
                                 [department_id])
        return [_job(r) for r in rows]

    def next_queued(self) -> Job | None:
        rows = self._state.query(_SELECT + " WHERE status = 'queued' ORDER BY seq LIMIT 1")
        return _job(rows[0]) if rows else None

    def set_status(self, job_id: str, status: Status, *, expect: Sequence[Status] | None = None,
                   error: str | None = None, metrics: dict[str, Any] | None = None,
                   model_id: str | None = None) -> bool:
        """Move a job on; with `expect`, only from one of those states (False if it was not)."""
        rows = self._state.query(
            "UPDATE jobs SET status = ?, error = ?, metrics = coalesce(?, metrics), "
            "model_id = coalesce(?, model_id), updated_at = ? WHERE id = ? "
            "AND (? OR list_contains(?::VARCHAR[], status)) RETURNING id",
            [status, error, json.dumps(metrics) if metrics is not None else None, model_id,
             utcnow(), job_id, not expect, list(expect or [])])
        if rows:
            self.changes += 1
        return bool(rows)

    def request_cancel(self, job_id: str) -> None:
        self._state.run("UPDATE jobs SET cancel_requested = true WHERE id = ?", [job_id])

    def fail_interrupted(self) -> int:
        """At start: a job still `running` was cut off by a stop; it fails and may be resent."""
        rows = self._state.query(
            "UPDATE jobs SET status = 'failed', error = ?, updated_at = ? "
            "WHERE status = 'running' RETURNING id",
            ["the service stopped while this job ran; submit it again", utcnow()])
        return len(rows)

    def keep_logs(self, job_id: str, stdout: str, stderr: str) -> None:
        sealed = self._master.wrap(json.dumps({"stdout": stdout, "stderr": stderr}).encode(),
                                   job_logs_context(job_id))
        self._state.run("UPDATE jobs SET logs = ? WHERE id = ?", [sealed, job_id])

    def logs(self, job_id: str) -> dict[str, str] | None:
        rows = self._state.query("SELECT logs FROM jobs WHERE id = ?", [job_id])
        if not rows or rows[0][0] is None:
            return None
        data: dict[str, str] = json.loads(self._master.unwrap(bytes(rows[0][0]),
                                                              job_logs_context(job_id)))
        return data

    def add_review(self, job_id: str, department_id: str, decision: str, reason: str) -> None:
        self._state.run("INSERT INTO job_reviews VALUES (?, ?, ?, ?, ?)",
                        [job_id, department_id, decision, reason, utcnow()])

    def reviews(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._state.query("SELECT department_id, decision, reason, reviewed_at "
                                 "FROM job_reviews WHERE job_id = ? ORDER BY reviewed_at",
                                 [job_id])
        return [{"department": r[0], "decision": r[1], "reason": r[2], "at": r[3].isoformat()}
                for r in rows]
