"""Joint modeling at 200,000 and 1,000,000 joined rows: SafeRoom jobs and scoring against the floor.

Run: `.venv/bin/python bench/models.py [--rows 200000,1000000] [--runs 3] [--batch 10000]`
(or `make bench-models`; prints Markdown tables). For each size, in one run:

- data: `synthetic.generate(n)` with n chosen so the bank's `loan_outcomes` has at least that many
  rows, then cut to exactly that many (the departments keep every firm of the city, as in life);
  features tax_annual.{annual_tax, tax_arrears}, social_insurance.{headcount, arrears_months},
  utilities.overdue_months, court_records.judgments; label loan_outcomes.default_12m.
- SafeRoom over HTTP: a real server (`start_server`); four departments upload their datasets as
  Parquet with a `model` policy, the bank its outcomes, an admin-signed agreement; per template,
  a first job then `--runs` jobs (4 s of idle room after each round), each timed from
  `POST /v1/jobs` to the poll that sees `succeeded` (long polls, `?wait=30`); AUC from the
  job's metrics; the server's peak RSS.
  Then, server stopped, consents inserted in bulk (as bench/verify.py does), server restarted:
  scoring batches of `--batch` and `--small-batch` distinct consenting subjects and single-subject
  requests, per model (each subject is scored once, well under the daily cap of 3).
- SafeRoom in process (its own process, on the same room): `JobService.submit` + `run_one`
  untouched except for timers wrapped around what they call (resolve/decide, the join, the jail,
  the metrics, sealing the model), and the jail taken apart with runs of its own (a bare jail, a
  jail importing the templates, a jail receiving the same tables); `ScoringService.score` with its
  phases timed the same way.
- the floor (its own process): the same five frames in pandas, joined with `merge`, rows in
  SafeRoom's order, by subject code (so the seeded stratified split is the very same), then plain
  scikit-learn: HistGradientBoostingClassifier with the template's defaults, or the template's
  WOE binning (`models.binning`) + LogisticRegression done plainly; time = split + fit + predict.
  Also the template code itself in process (`models.entry.train`, what the jail runs, without
  room or jail) and, for scoring, the fitted model's `score` (with 3 reasons) on 10,000 subjects
  looked up in pandas.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH / "peers"))

from _common import peak_mb, reset_peak  # noqa: E402
from _room import insert_consents  # noqa: E402

from sandbox.command import JAIL_ENV  # noqa: E402

FEATURES = ["tax_annual.annual_tax", "tax_annual.tax_arrears", "social_insurance.headcount",
            "social_insurance.arrears_months", "utilities.overdue_months",
            "court_records.judgments"]
LABEL = "loan_outcomes.default_12m"
DEPARTMENTS = ("tax_annual", "social_insurance", "utilities", "court_records")
DATASETS = (*DEPARTMENTS, "loan_outcomes")
TEMPLATES = ("logistic_scorecard", "gradient_boosting")
TRAIN_PURPOSE = "credit_modeling"
SCORE_PURPOSE = "loan_application"
MODEL_POLICY = {"purposes": [TRAIN_PURPOSE, SCORE_PURPOSE], "custom_code_requires_review": True,
                "min_training_rows": 500, "scoring_consent_required": True,
                "max_scores_per_subject_per_day": 3}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}
JAIL_THREADS = int(JAIL_ENV["OMP_NUM_THREADS"])
IDLE_AFTER_ROUND_S = 4.0
LOADS: list[float] = []  # 1-min load average, sampled after every job and worker
BORROWER_SHARE = 0.29  # a little under the ~30.7% of firms synthetic.generate gives a loan


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


class Phases:
    """Time what a function calls by wrapping it, per run; sums when one run calls it often."""

    def __init__(self) -> None:
        self.runs: list[dict[str, float]] = []
        self.current: dict[str, float] = defaultdict(float)
        self.undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)
        own = isinstance(owner, type) or type(owner).__name__ == "module"

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                self.current[label] += time.perf_counter() - t

        setattr(owner, attr, timed)
        if own:  # a module or a class: put the original back
            self.undo.append(lambda: setattr(owner, attr, original))
        else:  # an instance: drop the shadowing attribute
            self.undo.append(lambda: delattr(owner, attr))

    def start(self) -> None:
        self.current = defaultdict(float)

    def stop(self, **extra: float) -> dict[str, float]:
        run = {**self.current, **extra}
        self.runs.append(run)
        return run

    def medians(self, skip_first: bool = True) -> dict[str, float]:
        runs = self.runs[1:] if skip_first and len(self.runs) > 1 else self.runs
        keys = {k for r in runs for k in r}
        return {k: median([r.get(k, 0.0) for r in runs]) for k in keys}

    def restore(self) -> None:
        for undo in reversed(self.undo):
            undo()
        self.undo.clear()


# ----------------------------------------------------------------------------- data


def write_data(rows: int, seed: int, data: Path, subjects_needed: int) -> dict[str, int]:
    """Parquet per dataset; `loan_outcomes` cut to `rows`; a random list of applicants."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from saferoom import synthetic

    n = math.ceil(rows / BORROWER_SHARE)
    while True:
        frames = synthetic.generate(n, seed=seed)
        if len(frames["loan_outcomes"]) >= rows:
            break
        n = math.ceil(n * 1.05)
    frames["loan_outcomes"] = frames["loan_outcomes"].iloc[:rows]
    sizes = {}
    for name in DATASETS:
        pq.write_table(pa.Table.from_pandas(frames[name], preserve_index=False),
                       data / f"{name}.parquet")
        sizes[name] = len(frames[name])
    # Applicants: any firm of the city (a few have no record anywhere: "no_record").
    everyone = frames["market_registry"]["uscc"].to_numpy()
    rng = np.random.default_rng(seed + 1)
    picked = rng.choice(len(everyone), size=min(subjects_needed, len(everyone)), replace=False)
    pq.write_table(pa.table({"uscc": pa.array(everyone[picked].astype(str), pa.string())}),
                   data / "subjects.parquet")
    sizes["enterprises"] = n
    return sizes


def read_subjects(data: Path) -> list[str]:
    import pyarrow.parquet as pq

    return [str(s) for s in pq.read_table(data / "subjects.parquet").column("uscc").to_pylist()]


# ----------------------------------------------------------------------------- over HTTP


def http_setup(server: Any, data: Path) -> dict[str, Any]:
    from saferoom import synthetic
    from tests.integration.helpers import agree

    bank = server.new_principal("bank", "洛阳银行")
    owners = {name: server.new_principal("department", f"dept {name}") for name in DEPARTMENTS}
    owners["loan_outcomes"] = bank
    for name in DATASETS:
        with server.client(owners[name]["token"]) as c:
            ds = c.post("/v1/datasets", json=synthetic.DATASET_SPECS[name].body).json()
            r = c.put(f"/v1/datasets/{ds['id']}/data", headers=PARQUET, timeout=900,
                      content=(data / f"{name}.parquet").read_bytes())
            assert r.status_code == 200, r.text
            r = c.put(f"/v1/datasets/{ds['id']}/policy", json={"model": MODEL_POLICY})
            assert r.status_code == 200, r.text
    agree(server, bank["id"], list(DEPARTMENTS), [TRAIN_PURPOSE, SCORE_PURPOSE])
    return bank


def http_score(server: Any, bank: dict[str, Any], model_id: str, supply: Iterator[str],
               args: argparse.Namespace) -> dict[str, Any]:
    pid = server.process.pid
    reset_peak(pid)
    url = f"/v1/models/{model_id}/scores"
    out: dict[str, Any] = {"scored": 0, "asked": 0, "reasons": defaultdict(int)}
    with server.client(bank["token"]) as c:

        def batch(size: int) -> float:
            subjects = [next(supply) for _ in range(size)]
            t = time.perf_counter()
            r = c.post(url, json={"purpose": SCORE_PURPOSE, "subjects": subjects}, timeout=3600)
            elapsed = time.perf_counter() - t
            assert r.status_code == 200, r.text[:500]
            scores = r.json()["scores"]
            assert len(scores) == size
            out["asked"] += size
            out["scored"] += sum(s["score"] is not None for s in scores)
            for s in scores:
                if s["score"] is None:
                    out["reasons"][s["reason"]] += 1
            return elapsed

        out["first_s"] = batch(args.batch)  # starts the warm jail, loads the model (and, for
        # the first model after the restart, decrypts and prepares the four datasets)
        out["batch_s"] = [batch(args.batch) for _ in range(args.batch_runs)]
        out["small_s"] = [batch(args.small_batch) for _ in range(args.batch_runs)]
        out["single_s"] = [batch(1) for _ in range(args.singles)]
    out["rss_mb"] = peak_mb(pid)
    out["reasons"] = dict(out["reasons"])
    return out


def http_setup_room(room_dir: Path, data: Path) -> dict[str, Any]:
    """Departments and the bank upload, set `model` policies; an admin signs the agreement."""
    from tests.integration.conftest import start_server

    server = start_server(room_dir)
    try:
        t = time.perf_counter()
        bank = http_setup(server, data)
        setup = {"setup_s": time.perf_counter() - t, "setup_rss_mb": peak_mb(server.process.pid)}
    finally:
        server.stop()
    return {**setup, "bank_id": bank["id"], "bank": bank, "admin_token": server.admin_token}


def http_job(server: Any, bank: dict[str, Any], template: str) -> dict[str, Any]:
    """One job, timed from POST /v1/jobs to the poll that sees it succeeded."""
    pid = server.process.pid
    reset_peak(pid)
    with server.client(bank["token"]) as c:
        body = {"purpose": TRAIN_PURPOSE, "kind": "train", "template": template,
                "features": FEATURES, "label": LABEL}
        t = time.perf_counter()
        r = c.post("/v1/jobs", json=body, timeout=900)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        while True:  # long polls: each answers as soon as the status changes
            job = c.get(f"/v1/jobs/{job_id}", params={"wait": 30}, timeout=900).json()
            if job["status"] not in ("queued", "running", "pending_review"):
                break
        elapsed = time.perf_counter() - t
    LOADS.append(os.getloadavg()[0])
    assert job["status"] == "succeeded", job
    m = job["metrics"]
    return {"s": elapsed, "rss_mb": peak_mb(pid), "auc": m["auc"], "ks": m["ks"],
            "n_train": m["n_train"], "n_test": m["n_test"], "model_id": job["model_id"]}


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Round 0 is the first run; the median is over the others; peaks are the max."""
    return {"first_s": rounds[0]["s"], "times_s": [r["s"] for r in rounds[1:]],
            "rss_mb": max(r["rss_mb"] for r in rounds), "auc": rounds[-1]["auc"],
            "model_id": rounds[-1].get("model_id")}


def interleaved(base: Path, data: Path, setup: dict[str, Any],
                args: argparse.Namespace, subjects: list[str]) -> dict[str, Any]:
    """Rounds of (an HTTP job per template, then the floor in a fresh process), so a burst of
    someone else's load on the shared machine falls on both; then scoring over HTTP."""
    from tests.integration.conftest import start_server

    bank = setup["bank"]
    server = start_server(base / "room", {"SAFEROOM_ADMIN_TOKEN": setup["admin_token"]})
    http_rounds: dict[str, list[dict[str, Any]]] = {t: [] for t in TEMPLATES}
    floor_rounds: list[dict[str, Any]] = []
    out: dict[str, Any] = {"score": {}}
    try:
        for r in range(args.runs + 1):
            print(f"  round {r + 1} of {args.runs + 1}", file=sys.stderr)
            # Within a round the boosting job follows the scorecard job at once. Then the room
            # is left idle for a moment, as between a modeler's sessions: it replaces its spare
            # jails then (~1.5 s of CPU each), and neither the floor nor the next round should
            # share the 2 cores with that.
            for template in TEMPLATES:
                http_rounds[template].append(http_job(server, bank, template))
            time.sleep(IDLE_AFTER_ROUND_S)
            floor_rounds.append(run_worker(
                "floor", ["--data", str(data), "--batch", str(args.batch),
                          "--batch-runs", str(args.batch_runs)],
                base / f"floor{r}.json", base / f"floor{r}.log"))
        out["train"] = {t: merge_rounds(http_rounds[t]) for t in TEMPLATES}
        start = inprocess_subjects(args)
        supply = iter(subjects[start: start + http_subjects(args)])
        for template in TEMPLATES:
            print(f"  HTTP scores: {template} …", file=sys.stderr)
            out["score"][template] = http_score(server, bank, out["train"][template]["model_id"],
                                                supply, args)
    finally:
        server.stop()
    out["floor"] = merge_floor(floor_rounds)
    return out


def merge_floor(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    first = rounds[0]
    out: dict[str, Any] = {"sklearn": first["sklearn"], "rows": first["rows"],
                           "join_first_s": first["join_s"],
                           "join_s": median([r["join_s"] for r in rounds[1:]]),
                           "train": {}, "template": {}, "score": {}}
    for part in ("train", "template"):
        for t in TEMPLATES:
            out[part][t] = merge_rounds([r[part][t] for r in rounds])
    for t in TEMPLATES:
        out["score"][t] = {"first_s": first["score"][t]["times_s"][0],
                           "times_s": [x for r in rounds for x in r["score"][t]["times_s"][1:]]}
    return out


def http_subjects(args: argparse.Namespace) -> int:
    per_model = ((1 + args.batch_runs) * args.batch + args.batch_runs * args.small_batch
                 + args.singles)
    return len(TEMPLATES) * per_model


def inprocess_subjects(args: argparse.Namespace) -> int:
    return len(TEMPLATES) * (1 + args.batch_runs) * args.batch


# ----------------------------------------------------------------------------- in process


def worker_inprocess(args: argparse.Namespace) -> None:
    """JobService.submit + run_one and ScoringService.score on the room the server left, timed
    by phase; the jail taken apart with runs of its own."""

    import models.artifact as models_artifact
    import models.entry as models_entry
    import models.training as models_training
    import saferoom.jobs as jobs_module
    import saferoom.scoring as scoring_module
    import saferoom.training as training_module
    from models.entry import train as entry_train
    from saferoom.auth import Principal
    from saferoom.jail import keep_training_spare, start_runner
    from saferoom.jobs import JobService
    from saferoom.query.service import engine_for
    from saferoom.room import Room
    from saferoom.scoring import ScoreRequest, ScoringService
    from saferoom.settings import load_settings
    from saferoom.training import JobRequest
    from sandbox import JOB_LIMITS, JailJob
    from sandbox.pool import WarmPool

    context = json.loads(Path(args.context).read_text())
    room = Room.open(load_settings({}, {"data_dir": Path(args.room)}))
    engine = engine_for(room)
    runner = start_runner()
    assert runner is not None, "the jail cannot start here"
    keep_training_spare(runner)  # as the service does
    gc.freeze()  # as the service does once started
    service = JobService(room, engine, runner)  # no worker thread: run_one is called here
    bank = Principal(context["bank_id"], "bank", "洛阳银行")
    report: dict[str, Any] = {"train": {}, "score": {}}
    try:
        for template in TEMPLATES:
            print(f"  in process: {template} …", file=sys.stderr)
            phases = Phases()
            captured: dict[str, Any] = {}
            original_run = runner.run

            def run_capture(job: Any, original_run: Any = original_run,
                            captured: dict[str, Any] = captured) -> Any:
                result = original_run(job)
                captured["job"], captured["result"] = job, result
                return result

            runner.run = run_capture  # type: ignore[method-assign]
            phases.wrap(jobs_module, "resolve", "resolve + decide")
            phases.wrap(jobs_module, "decide", "resolve + decide")
            phases.wrap(jobs_module, "real_frame", "join (real_frame)")
            phases.wrap(jobs_module, "train", "train()")
            phases.wrap(runner, "run", "jail run")
            phases.wrap(training_module, "evaluate", "metrics (evaluate)")
            phases.wrap(service.models, "add", "seal + store model")
            reset_peak()
            totals: list[float] = []
            jail: list[dict[str, float]] = []
            try:
                for _ in range(args.runs + 1):
                    request = JobRequest(purpose=TRAIN_PURPOSE, template=template,
                                         features=FEATURES, label=LABEL)
                    phases.start()
                    t = time.perf_counter()
                    body = service.submit(bank, request, room.call("job.submit", bank))
                    submitted = time.perf_counter() - t
                    job = service.jobs.get(body["id"])
                    assert job is not None
                    assert service.jobs.set_status(job.id, "running", expect=["queued"])
                    t = time.perf_counter()
                    service.run_one(job)
                    ran = time.perf_counter() - t
                    phases.stop(**{"submit (resolve, decide, label size check)": submitted,
                                   "run_one": ran})
                    totals.append(submitted + ran)
                    done = service.jobs.get(job.id)
                    assert done is not None
                    assert done.status == "succeeded", done
                    result = captured["result"]
                    jail.append({"wall_s": result.wall_seconds, "cpu_s": result.cpu_seconds,
                                 "peak_rss_mb": result.peak_rss_bytes / 2**20})
            finally:
                phases.restore()
                if "run" in vars(runner):
                    del runner.run
            rss = peak_mb()
            med = phases.medians()
            # Derived phases: what train() does around the jail; what run_one does besides.
            med["labels + split + take"] = (med["train()"] - med["jail run"]
                                            - med["metrics (evaluate)"])
            med["logs + status + audit"] = (
                med["run_one"] - med["resolve + decide"] - med["join (real_frame)"]
                - med["train()"] - med["seal + store model"])
            # The jail taken apart: the same job's tables and params, in jails of their own.
            job = captured["job"]
            # Other limits than a training job's, so these jails start cold, never from the spare.
            limits = JOB_LIMITS["train"].with_changes(wall_seconds=1199)
            probe = "saferoom_jail.probe:look_around"

            def jail_s(j: Any, expect_ok: bool) -> float:
                times = []
                for _ in range(3):
                    r = runner.run(j)
                    assert r.ok == expect_ok, (r.status, r.error)
                    times.append(r.wall_seconds)
                return median(times)

            bare = jail_s(JailJob(entry=probe, limits=limits), True)
            imports = jail_s(JailJob(entry="models.entry:train", params=job.params,
                                     limits=limits), False)  # fails on its missing inputs
            with_inputs = jail_s(JailJob(entry=probe, inputs=job.inputs, limits=limits), True)
            compute, oversubscribed = [], []
            inside = Phases()  # the template code's own parts, by wrapping what it calls
            inside.wrap(models_training, "fit", "fit")
            inside.wrap(models_entry, "train_model", "template train()")
            inside.wrap(models_artifact, "dump", "pickle the model")
            try:
                for _ in range(args.runs):
                    inside.start()
                    t = time.perf_counter()
                    entry_train(job.inputs, job.params, {})
                    compute.append(time.perf_counter() - t)
                    inside.stop(total=compute[-1])
            finally:
                inside.restore()
            code = inside.medians(skip_first=False)
            for _ in range(args.runs):
                # The jail's OMP_NUM_THREADS (sandbox/command.py), which scikit-learn obeys.
                with jail_threads():
                    t = time.perf_counter()
                    entry_train(job.inputs, job.params, {})
                    oversubscribed.append(time.perf_counter() - t)
            rows_in = {k: v.num_rows for k, v in job.inputs.items()}
            bytes_in = sum(v.nbytes for v in job.inputs.values())
            report["train"][template] = {
                "first_s": totals[0], "times_s": totals[1:], "rss_mb": rss,
                "auc": done.metrics["auc"] if done.metrics else None,
                "phases": med, "jail": {k: median([j[k] for j in jail[1:]]) for k in jail[0]},
                "jail_parts": {"cold jail (start, exit)": bare,
                               "+ import models, sklearn": imports - bare,
                               "+ tables in (probe)": with_inputs - bare,
                               "template code in process (same tables)": median(compute),
                               "· fit (incl. encoding the train rows)": code["fit"],
                               "· encoder, predict the test rows":
                                   code["template train()"] - code["fit"],
                               "· pickle the model, scores to Arrow":
                                   code["total"] - code["template train()"],
                               f"same, with the jail's OMP_NUM_THREADS={JAIL_THREADS}":
                                   median(oversubscribed)},
                "rows_in": rows_in, "mb_in": bytes_in / 2**20, "model_id": done.model_id,
            }
        models = {t: report["train"][t]["model_id"] for t in TEMPLATES}
        report["score"] = inprocess_scoring(args, room, engine, runner, service, bank, models,
                                            scoring_module, ScoringService, ScoreRequest,
                                            WarmPool)
    finally:
        service.stop()
        runner.close()
        room.close()
    Path(args.out).write_text(json.dumps(report, default=float))


@contextlib.contextmanager
def jail_threads() -> Iterator[None]:
    """Threads as in a jail: its OMP_NUM_THREADS in the environment (which scikit-learn reads at
    each fit) and in the already-loaded OpenMP/BLAS runtimes."""
    from threadpoolctl import threadpool_limits

    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(JAIL_THREADS)
    try:
        with threadpool_limits(limits=JAIL_THREADS):
            yield
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


def inprocess_scoring(args: argparse.Namespace, room: Any, engine: Any, runner: Any,
                      service: Any, bank: Any, models: dict[str, str], scoring_module: Any,
                      scoring_cls: Any, request_cls: Any, pool_cls: Any) -> dict[str, Any]:
    subjects = read_subjects(Path(args.data))
    supply = iter(subjects[: inprocess_subjects(args)])
    scoring = scoring_cls(room, engine, runner, service.models)
    out: dict[str, Any] = {}
    try:
        for template in TEMPLATES:
            print(f"  in process scores: {template} …", file=sys.stderr)
            model_id = models[template]
            phases = Phases()
            phases.wrap(scoring_module, "check_subjects", "check subjects")
            phases.wrap(scoring_module, "decide_score_request", "request decision")
            phases.wrap(room.consents, "live_for", "consents (live_for)")
            phases.wrap(scoring_module.ScoringRules, "decide_each", "per-subject decisions")
            phases.wrap(scoring.ledger, "judge", "judge()")
            phases.wrap(engine, "frame", "join (engine.frame)")
            phases.wrap(pool_cls, "call", "jail call (warm pool)")
            phases.wrap(scoring_module, "record_per_subject", "audit (one event per subject)")
            scored = 0
            try:
                for _ in range(1 + args.batch_runs):  # the first starts the warm jail
                    batch = [next(supply) for _ in range(args.batch)]
                    phases.start()
                    t = time.perf_counter()
                    body = scoring.score(bank, model_id, request_cls(purpose=SCORE_PURPOSE,
                                                                     subjects=batch),
                                         room.call("model.score", bank))
                    phases.stop(total=time.perf_counter() - t)
                    scored = sum(s["score"] is not None for s in body["scores"])
                    assert scored > 0, body["scores"][:3]  # else it timed refusals only
            finally:
                phases.restore()
            med = phases.medians()
            med["ledger DB (read + bump counts)"] = med["judge()"] - med["per-subject decisions"]
            med["results as dicts, other"] = med["total"] - sum(
                med[k] for k in ("check subjects", "request decision", "consents (live_for)",
                                 "judge()", "join (engine.frame)", "jail call (warm pool)",
                                 "audit (one event per subject)"))
            out[template] = {"phases": med, "first": phases.runs[0]["total"], "scored": scored}
    finally:
        scoring.close()
    return out


# ----------------------------------------------------------------------------- the floor


def worker_floor(args: argparse.Namespace) -> None:
    """Plain scikit-learn on the joined pandas frame; the template code in process; scoring."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from models import artifact
    from models.binning import fit_bins, weights_of_evidence
    from models.entry import train as entry_train
    from models.features import Feature
    from models.params import TEMPLATE_PARAMS
    from saferoom import synthetic
    from saferoom.training import SPLIT_SEED, TEST_SHARE

    data = Path(args.data)
    frames = {n: pd.read_parquet(data / f"{n}.parquet") for n in DATASETS}
    types = {}
    for f in FEATURES:
        dataset, column = f.split(".")
        spec = synthetic.DATASET_SPECS[dataset].body["columns"]
        types[f] = next(c["type"] for c in spec if c["name"] == column)

    def join() -> pd.DataFrame:
        out = frames["loan_outcomes"][["uscc", "default_12m"]]
        for name in DEPARTMENTS:
            columns = [f.split(".")[1] for f in FEATURES if f.startswith(name + ".")]
            right = frames[name][["uscc", *columns]].rename(
                columns={c: f"{name}.{c}" for c in columns})
            out = out.merge(right, on="uscc", how="left")
        return out

    t = time.perf_counter()
    joined = join()
    join_s = time.perf_counter() - t
    # SafeRoom's row order (by subject code), so the seeded split picks the very same rows.
    joined = joined.sort_values("uscc", kind="stable", ignore_index=True)
    y = joined["default_12m"].to_numpy(dtype=np.int8)

    def matrix(frame: pd.DataFrame) -> Any:
        return np.column_stack([frame[f].astype("Float64").to_numpy(dtype=np.float64,
                                                                     na_value=np.nan)
                                for f in FEATURES])

    defaults = {t: {k: p.default for k, p in TEMPLATE_PARAMS[t].items()} for t in TEMPLATES}
    categorical = np.array([types[f] in ("bool", "string") for f in FEATURES])

    def plain(template: str) -> tuple[Any, Any]:
        x = matrix(joined)
        train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=TEST_SHARE,
                                               stratify=y, random_state=SPLIT_SEED)
        train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
        xt, yt, xs = x[train_idx], y[train_idx], x[test_idx]
        if template == "gradient_boosting":
            model = HistGradientBoostingClassifier(
                **defaults[template], categorical_features=categorical, random_state=SPLIT_SEED)
            model.fit(xt, yt)
            return y[test_idx], model.predict_proba(xs)[:, 1]
        p = defaults[template]
        bins = [fit_bins(Feature(f, types[f]), xt[:, j], p["bins"])  # type: ignore[arg-type]
                for j, f in enumerate(FEATURES)]
        index = np.column_stack([b.assign(xt[:, j]) for j, b in enumerate(bins)])
        woes = [weights_of_evidence(index[:, j], b.count, yt) for j, b in enumerate(bins)]
        design = np.column_stack([w[index[:, j]] for j, w in enumerate(woes)])
        regression = LogisticRegression(C=p["C"], max_iter=1000).fit(design, yt)
        test_design = np.column_stack([w[b.assign(xs[:, j])]
                                       for j, (b, w) in enumerate(zip(bins, woes, strict=True))])
        return y[test_idx], regression.predict_proba(test_design)[:, 1]

    def arrow(frame: pd.DataFrame) -> pa.Table:
        x = matrix(frame)
        cols = {}
        for j, f in enumerate(FEATURES):
            column = pa.array(x[:, j], from_pandas=True)  # NaN -> null
            cols[f] = column.cast(pa.bool_() if types[f] == "bool" else pa.int64())
        return pa.table(cols)

    def template_code(template: str) -> tuple[Any, Any, Any]:
        """What the jail runs (models.entry.train), on tables made as the room makes them."""
        table = arrow(joined)
        train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=TEST_SHARE,
                                               stratify=y, random_state=SPLIT_SEED)
        train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
        inputs = {"train": table.take(pa.array(train_idx)).append_column(
                      "__label", pa.array(y[train_idx], pa.int8())),
                  "test": table.take(pa.array(test_idx))}
        out = entry_train(inputs, {"template": template, "params": {}, "seed": SPLIT_SEED,
                                   "feature_types": types}, {})
        scores = out["tables"]["test_scores"].column("score").to_numpy()
        return y[test_idx], scores, out["blobs"]["model"]

    subjects = read_subjects(data)[: args.batch]
    indexed = {n: frames[n].set_index("uscc") for n in DEPARTMENTS}

    def lookup() -> pd.DataFrame:
        parts = []
        for name in DEPARTMENTS:
            columns = [f.split(".")[1] for f in FEATURES if f.startswith(name + ".")]
            part = indexed[name][columns].reindex(subjects)
            parts.append(part.rename(columns={c: f"{name}.{c}" for c in columns}))
        return pd.concat(parts, axis=1)

    report: dict[str, Any] = {"join_s": join_s, "rows": len(joined),
                              "sklearn": sklearn.__version__, "train": {}, "template": {},
                              "score": {}}
    for template in TEMPLATES:  # one timed run of each per process: the rounds give the rest
        reset_peak()
        t = time.perf_counter()
        truth, score = plain(template)
        report["train"][template] = {"s": time.perf_counter() - t, "rss_mb": peak_mb(),
                                     "auc": float(roc_auc_score(truth, score))}
        reset_peak()
        t = time.perf_counter()
        truth, score, blob = template_code(template)
        report["template"][template] = {"s": time.perf_counter() - t, "rss_mb": peak_mb(),
                                        "auc": float(roc_auc_score(truth, score))}
        model = artifact.load(blob).model
        times = []
        for _ in range(args.batch_runs + 1):
            t = time.perf_counter()
            model.score(arrow(lookup()), 3)
            times.append(time.perf_counter() - t)
        report["score"][template] = {"times_s": times}
    Path(args.out).write_text(json.dumps(report, default=float))


# ----------------------------------------------------------------------------- orchestration


def run_worker(kind: str, extra: list[str], out: Path, log: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, *extra,
           "--out", str(out)]
    t = time.perf_counter()
    with open(log, "wb") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO,
                            timeout=7200).returncode
    LOADS.append(os.getloadavg()[0])
    print(f"  {kind}: {time.perf_counter() - t:.0f} s, exit {rc}", file=sys.stderr)
    if rc != 0 or not out.exists():
        print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise SystemExit(f"the {kind} worker failed")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="200000,1000000", help="joined rows, comma-separated")
    ap.add_argument("--runs", type=int, default=3, help="timed jobs per template after a first")
    ap.add_argument("--batch", type=int, default=10_000, help="subjects per scoring request")
    ap.add_argument("--small-batch", type=int, default=1_000)
    # Seven: on a shared 2-core machine one batch in three or four runs ~15% slow.
    ap.add_argument("--batch-runs", type=int, default=7, help="timed batches after a first")
    ap.add_argument("--singles", type=int, default=200, help="single-subject requests per model")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs, JSON)")
    ap.add_argument("--worker", choices=["floor", "inprocess"], help=argparse.SUPPRESS)
    for hidden in ("--data", "--room", "--context", "--out"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        {"floor": worker_floor, "inprocess": worker_inprocess}[args.worker](args)
        return

    work = Path(tempfile.mkdtemp(prefix="saferoom-bench-models-"))
    load_before = os.getloadavg()
    loads: list[float] = []
    results: dict[int, dict[str, Any]] = {}
    common = ["--runs", str(args.runs), "--batch", str(args.batch), "--small-batch",
              str(args.small_batch), "--batch-runs", str(args.batch_runs), "--singles",
              str(args.singles)]
    try:
        for rows in [int(r) for r in args.rows.split(",")]:
            base = work / f"rows{rows}"
            data = base / "data"
            data.mkdir(parents=True)
            t = time.perf_counter()
            sizes = write_data(rows, args.seed, data, http_subjects(args)
                               + inprocess_subjects(args))
            print(f"{rows:,} joined rows: {sizes['enterprises']:,} enterprises generated in "
                  f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
            subjects = read_subjects(data)
            loads.append(os.getloadavg()[0])
            setup = http_setup_room(base / "room", data)
            insert_consents(base / "room", setup["bank_id"], SCORE_PURPOSE, list(DEPARTMENTS),
                            subjects)
            context = base / "context.json"
            context.write_text(json.dumps({"bank_id": setup["bank_id"]}))
            inproc = run_worker("inprocess", ["--data", str(data), "--room", str(base / "room"),
                                              "--context", str(context),
                                              *common], base / "inprocess.json",
                                base / "inprocess.log")
            loads.append(os.getloadavg()[0])
            both = interleaved(base, data, setup, args, subjects)
            loads.append(os.getloadavg()[0])
            http = {"train": both["train"], "score": both["score"], "setup_s": setup["setup_s"]}
            floor = both["floor"]
            results[rows] = {"sizes": sizes, "http": http, "inprocess": inproc, "floor": floor}
        print_tables(args, results, load_before, os.getloadavg(), loads)
    finally:
        if args.keep:
            print(f"\nkept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- the tables


def print_tables(args: argparse.Namespace, results: dict[int, dict[str, Any]],
                 load_before: tuple[float, ...], load_after: tuple[float, ...],
                 loads: list[float]) -> None:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "saferoom", "models", "sandbox",
                            "policies"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    any_floor = next(iter(results.values()))["floor"]
    print(f"\nSafeRoom at {head or '?'}{' + uncommitted changes' if dirty else ''}; "
          f"{os.cpu_count()} cores; scikit-learn {any_floor['sklearn']}; 1-min load average "
          f"{load_before[0]:.1f} before, {max([*loads, *LOADS, load_after[0]]):.1f} at most "
          f"between steps, {load_after[0]:.1f} after")
    print(f"\nTraining: {args.runs + 1} rounds, each an HTTP job per template then the floor in "
          "a fresh process (so load bursts fall on both); median of the rounds after the first "
          "(first s: round 1, where the scorecard job also decrypts and prepares the datasets); "
          "SafeRoom in process: its own process, the same count of jobs. × floor against plain "
          "scikit-learn's split + fit + predict on the joined frame; ΔAUC = AUC − the floor's "
          "AUC on the same held-out 30%.\n")
    print("| joined rows | template | system | median s | × floor | first s | peak RSS MB "
          "| AUC | ΔAUC |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for rows, r in results.items():
        fl = r["floor"]
        for template in TEMPLATES:
            floor_s = median(fl["train"][template]["times_s"])
            floor_auc = fl["train"][template]["auc"]
            entries = [
                ("plain scikit-learn in process (floor)", fl["train"][template], ""),
                ("template code in process, no room, no jail", fl["template"][template], ""),
                ("SafeRoom in process (submit + run_one)", r["inprocess"]["train"][template],
                 " (worker)"),
                ("SafeRoom over HTTP (POST → succeeded)", r["http"]["train"][template],
                 " (server)"),
            ]
            for name, res, who in entries:
                med = median(res["times_s"])
                auc = res["auc"]
                print(f"| {rows:,} | {template} | {name} | {med:.2f} | {med / floor_s:.2f} "
                      f"| {res['first_s']:.2f} | {res['rss_mb']:,.0f}{who} | {auc:.4f} "
                      f"| {auc - floor_auc:+.4f} |")
        print(f"| {rows:,} | - | pandas merge of the five frames (not in the floor above) "
              f"| {fl['join_s']:.2f} | | {fl['join_first_s']:.2f} | | | |")

    print("\nWhere a job's time goes, SafeRoom in process (median s per phase; the jail's "
          "parts from jails run on their own with the same tables and params):\n")
    cols = [(rows, t) for rows in results for t in TEMPLATES]
    print("| phase | " + " | ".join(f"{rows // 1000:,}k {t}" for rows, t in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    order = ["submit (resolve, decide, label size check)", "resolve + decide",
             "join (real_frame)", "labels + split + take", "jail run", "metrics (evaluate)",
             "seal + store model", "logs + status + audit"]
    for phase in order:
        cells = [results[rows]["inprocess"]["train"][t]["phases"].get(phase, float("nan"))
                 for rows, t in cols]
        print(f"| {phase} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    parts = next(iter(results.values()))["inprocess"]["train"][TEMPLATES[0]]["jail_parts"]
    for part in parts:
        cells = [results[rows]["inprocess"]["train"][t]["jail_parts"][part] for rows, t in cols]
        print(f"| — jail: {part} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    for key, label in (("cpu_s", "jail CPU s (with the spare's preload)"),
                       ("peak_rss_mb", "jail peak RSS MB (JailResult.peak_rss_bytes)")):
        cells = [results[rows]["inprocess"]["train"][t]["jail"][key] for rows, t in cols]
        print(f"| {label} | " + " | ".join(f"{c:,.1f}" for c in cells) + " |")
    cells = [results[rows]["inprocess"]["train"][t]["rss_mb"] for rows, t in cols]
    print("| this worker's own peak RSS MB (launches the jail) | "
          + " | ".join(f"{c:,.0f}" for c in cells) + " |")
    cells = [results[rows]["inprocess"]["train"][t]["mb_in"] for rows, t in cols]
    print("| tables into the jail MB | " + " | ".join(f"{c:,.0f}" for c in cells) + " |")
    cells = [results[rows]["inprocess"]["train"][t]["times_s"] for rows, t in cols]
    print("| total (submit + run_one) | " + " | ".join(f"{median(c):.2f}" for c in cells) + " |")

    print(f"\nScoring from the warm pool over HTTP: {args.batch:,}- and {args.small_batch:,}-"
          f"subject requests of distinct consenting applicants (median of {args.batch_runs} "
          f"after a first), {args.singles} single-subject requests; the floor is the fitted "
          "template's `score` with 3 reasons, in process, after a pandas lookup of the "
          "subjects' features (no consent, cap, audit or jail).\n")
    print("| joined rows | model | what | median ms | subjects/s | p50 / p99 ms | first ms "
          "| peak RSS MB | scored / asked |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for rows, r in results.items():
        for template in TEMPLATES:
            s = r["http"]["score"][template]
            f = r["floor"]["score"][template]
            b, sm = median(s["batch_s"]), median(s["small_s"])
            singles = [x * 1000 for x in s["single_s"]]
            not_scored = ", ".join(f"{k} {v:,}" for k, v in s["reasons"].items())
            print(f"| {rows:,} | {template} | SafeRoom, {args.batch:,} per request "
                  f"| {b * 1000:,.0f} | {args.batch / b:,.0f} | | {s['first_s'] * 1000:,.0f} "
                  f"| {s['rss_mb']:,.0f} (server) | {s['scored']:,} / {s['asked']:,}"
                  f"{f' ({not_scored})' if not_scored else ''} |")
            print(f"| {rows:,} | {template} | SafeRoom, {args.small_batch:,} per request "
                  f"| {sm * 1000:,.0f} | {args.small_batch / sm:,.0f} | | | | |")
            print(f"| {rows:,} | {template} | SafeRoom, 1 per request | {median(singles):.1f} "
                  f"| {1000 / median(singles):,.0f} | {percentile(singles, 50):.1f} / "
                  f"{percentile(singles, 99):.1f} | | | |")
            fb = median(f["times_s"])
            print(f"| {rows:,} | {template} | floor: lookup + model.score, {args.batch:,} "
                  f"| {fb * 1000:,.1f} | {args.batch / fb:,.0f} | | {f['first_s'] * 1000:,.0f} "
                  f"| | |")

    print(f"\nWhere a {args.batch:,}-subject scoring request's time goes, in process "
          "(ScoringService.score, median of the requests after the first; ms):\n")
    print("| phase | " + " | ".join(f"{rows // 1000:,}k {t}" for rows, t in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    order = ["check subjects", "request decision", "consents (live_for)",
             "per-subject decisions", "ledger DB (read + bump counts)", "join (engine.frame)",
             "jail call (warm pool)", "audit (one event per subject)", "results as dicts, other",
             "total"]
    for phase in order:
        cells = [results[rows]["inprocess"]["score"][t]["phases"].get(phase, float("nan"))
                 for rows, t in cols]
        print(f"| {phase} | " + " | ".join(f"{c * 1000:,.0f}" for c in cells) + " |")

    print("\nGoals (issue 7):")
    for rows, r in results.items():
        for template in TEMPLATES:
            fl = r["floor"]["train"][template]
            http = r["http"]["train"][template]
            ratio = median(http["times_s"]) / median(fl["times_s"])
            print(f"- {rows:,} rows, {template}: end to end over HTTP {ratio:.2f}× the floor "
                  f"(goal ≤ 1.3); AUC {http['auc']:.4f} vs {fl['auc']:.4f}, "
                  f"Δ {http['auc'] - fl['auc']:+.4f} (goal |Δ| ≤ 0.005)")
            s = r["http"]["score"][template]
            slowest, fastest = max(s["batch_s"]), min(s["batch_s"])
            print(f"- {rows:,} rows, {template}: {args.batch / median(s['batch_s']):,.0f} "
                  f"subjects/s in {args.batch:,}-subject batches (goal ≥ 20,000); the "
                  f"{len(s['batch_s'])} timed batches {args.batch / slowest:,.0f}–"
                  f"{args.batch / fastest:,.0f}")


if __name__ == "__main__":
    main()
