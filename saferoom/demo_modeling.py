"""The demo's joint-modeling step: the bank trains a scorecard on department data in a jail,
sees only its quality, and scores three applicants (one without consent).

Runs the same `JobService` and `ScoringService` as `POST /v1/jobs` and `/v1/models/{id}/scores`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from policies.errors import PolicyDenied
from saferoom.api.dataset_policy import set_policy
from saferoom.auth import Principal
from saferoom.jail import start_runner
from saferoom.jobs import JobService
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.room import Room
from saferoom.scoring import ScoreRequest, ScoringService
from saferoom.training import JobRequest

Echo = Callable[[str], None]
FEATURES = ["tax_annual.annual_tax", "tax_annual.tax_arrears", "social_insurance.headcount",
            "social_insurance.arrears_months"]
LABEL = "loan_outcomes.default_12m"
OWN_POLICY = {"model": {"purposes": ["credit_modeling", "loan_application"],
                        "custom_code_requires_review": False, "min_training_rows": 500,
                        "scoring_consent_required": False}}


def modeling_step(room: Room, engine: DuckDBEngine, bank: Principal, firms: list[Principal],
                  echo: Echo) -> None:
    runner = start_runner()
    if runner is None:
        echo("  joint modeling skipped: the jail (bubblewrap) cannot start on this machine")
        return
    jobs = JobService(room, engine, runner)
    scoring = ScoringService(room, engine, runner, jobs.models)
    try:
        outcomes = room.state.dataset_by_name("loan_outcomes")
        assert outcomes is not None
        set_policy(room, room.call("policy.put", bank), outcomes, OWN_POLICY)
        request = JobRequest(purpose="credit_modeling", template="logistic_scorecard",
                             features=FEATURES, label=LABEL)
        started = time.perf_counter()
        try:
            submitted = jobs.submit(bank, request, room.call("job.submit", bank))
        except PolicyDenied as exc:  # e.g. too few labelled firms in a small demo
            echo(f"  joint modeling refused: {exc.code} ({exc.reason})")
            return
        job = jobs.jobs.get(submitted["id"])
        assert job is not None
        jobs.jobs.set_status(job.id, "running", expect=["queued"])
        jobs.run_one(job)  # the demo runs it now rather than waiting for the worker thread
        done = jobs.jobs.get(job.id)
        assert done is not None
        echo(f"  the bank trains a logistic scorecard on {len(FEATURES)} department features and "
             f"its own loan outcomes, in a jail ({time.perf_counter() - started:.1f}s):")
        if done.status != "succeeded" or done.metrics is None or done.model_id is None:
            echo(f"      the job {done.status}: {done.error}")
            return
        m = done.metrics
        echo(f"      {done.status}: AUC {m['auc']}, KS {m['ks']} on {m['n_test']:,} held-out "
             f"firms (trained on {m['n_train']:,}); the model itself never leaves the room")
        subjects = [f.uscc for f in firms if f.uscc]
        scored = scoring.score(bank, done.model_id,
                               ScoreRequest(purpose="loan_application", subjects=subjects),
                               room.call("model.score", bank))
        echo("  the bank scores its applicants (points; base 600 at 50:1 odds, 20 points "
             "to double them):")
        names = {f.uscc: f.name for f in firms}
        for s in scored["scores"]:
            if s["score"] is None:
                echo(f"      {names[s['uscc']]}: no score ({s['reason']})")
            else:
                echo(f"      {names[s['uscc']]}: {s['score']} points; reasons: "
                     + ("; ".join(s["reasons"]) or "—"))
    finally:
        scoring.close()
