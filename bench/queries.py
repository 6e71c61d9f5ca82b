"""DP aggregate queries at 1,000,000 enterprises: SafeRoom against the DuckDB floor and two peers.

Run: `.venv/bin/python bench/queries.py [--rows N] [--runs K] [--http-runs K] [--rounds R]`
(prints Markdown tables). Q1 count by region; Q2 count and AVG(annual_tax) by region × industry
over market_registry JOIN tax_annual; Q3 SUM(registered_capital) by industry; ε per query.

Every system runs in its own process over the same generated data (Parquet files written once),
so each peak RSS is its own: the plain exact DuckDB query (the floor), SafeRoom in process
(`QueryService.run`), SafeRoom over HTTP (a real server), SmartNoise SQL and OpenDP's polars
Context. The peers live in venvs the bench makes on first run (bench/.venv-smartnoise,
bench/.venv-opendp), never in the project's: their pins (opendp<0.15, pandas<3) would break it.
Errors are relative to the floor's exact answers, over the cells each system released.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH / "peers"))

from _common import QUERIES, Cells, key, measure, peak_mb, write_report  # noqa: E402

SQL = {
    "Q1": "SELECT region, COUNT(*) AS n FROM market_registry GROUP BY region",
    "Q2": "SELECT m.region, m.industry, COUNT(*) AS n, AVG(t.annual_tax) AS avg_tax "
          "FROM market_registry AS m JOIN tax_annual AS t ON m.uscc = t.uscc "
          "GROUP BY m.region, m.industry",
    "Q3": "SELECT industry, SUM(registered_capital) AS sum_capital FROM market_registry "
          "GROUP BY industry",
}
DATASETS = ("market_registry", "tax_annual")
PURPOSE = "credit_research"
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}
# (venv, what to install, runner): made by the bench on first run, remade when the pins change.
PEERS = {
    "SmartNoise SQL": (BENCH / ".venv-smartnoise", ["smartnoise-sql==1.0.10", "pyarrow"],
                       BENCH / "peers" / "smartnoise_runner.py"),
    "OpenDP polars Context": (BENCH / ".venv-opendp", ["opendp[polars]==0.16.0", "pyarrow"],
                              BENCH / "peers" / "opendp_runner.py"),
}


def policy() -> dict[str, Any]:
    # A bench: a budget no run can exhaust.
    return {"aggregate": {"purposes": [PURPOSE], "functions": ["count", "sum", "avg"],
                          "epsilon_per_period": 1_000_000, "period": "month"}}


def cells_of(body: dict[str, Any], name: str) -> Cells:
    """A SafeRoom answer as cells; a suppressed cell is None."""
    spec = QUERIES[name]
    cols = body["columns"]
    groups = len(spec["groups"])
    return {
        key(row[:groups]): {a: row[cols.index(a)] for a in spec["aggregates"]}
        for row in body["rows"]
    }


# ----------------------------------------------------------------------------- workers


def worker_floor(args: argparse.Namespace) -> None:
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect()
    for name in DATASETS:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM "
                    f"read_parquet('{args.data}/{name}.parquet')")
    report: dict[str, Any] = {"system": "DuckDB exact (floor)", "setup_s": time.perf_counter() - t,
                              "setup_rss_mb": peak_mb(), "versions": {"duckdb": duckdb.__version__},
                              "queries": {}}
    for name, sql in SQL.items():
        spec = QUERIES[name]
        groups = len(spec["groups"])

        def run(sql: str = sql, spec: dict = spec, groups: int = groups) -> Cells:
            return {key(r[:groups]): dict(zip(spec["aggregates"], map(float, r[groups:]),
                                              strict=True))
                    for r in con.execute(sql).fetchall()}

        report["queries"][name] = measure(run, args.runs)
    write_report(args.out, report)


def worker_inprocess(args: argparse.Namespace) -> None:
    from policies.facts import Agreement
    from saferoom import datasets as ops
    from saferoom import synthetic
    from saferoom.api.dataset_policy import set_policy
    from saferoom.auth import Principal
    from saferoom.dataset_spec import DatasetCreate
    from saferoom.query.service import QueryRequest, QueryService
    from saferoom.recorder import Call
    from saferoom.room import Room
    from saferoom.settings import load_settings

    dept = Principal("dep_bench", "department", "market regulation")
    bank = Principal("ban_bench", "bank", "bench bank")
    t = time.perf_counter()
    room = Room.open(load_settings({}, {"data_dir": Path(args.work) / "inprocess"}))
    for name in DATASETS:
        spec = DatasetCreate.model_validate(synthetic.DATASET_SPECS[name].body)
        d = ops.create_dataset(room, dept, spec)
        ops.upload(room, d, (Path(args.data) / f"{name}.parquet").read_bytes(), "parquet",
                   append=False)
        current = room.state.dataset(d.id)
        assert current is not None
        set_policy(room, Call(room.audit, "policy.put", dept), current, policy())
    now = datetime.now(UTC)
    room.agreements.add(Agreement("agr_bench", bank.id, frozenset(DATASETS),
                                  frozenset([PURPOSE]), now + timedelta(days=30)), now)
    service = QueryService(room)
    report: dict[str, Any] = {"system": "SafeRoom in process", "setup_s": time.perf_counter() - t,
                              "setup_rss_mb": peak_mb(), "versions": {}, "queries": {}}
    try:
        for name, sql in SQL.items():
            request = QueryRequest(sql=sql, epsilon=args.epsilon, purpose=PURPOSE)
            privacy: dict[str, Any] = {}

            def run(request: QueryRequest = request, name: str = name,
                    privacy: dict = privacy) -> Cells:
                body = service.run(bank, request, Call(room.audit, "query", bank))
                privacy.update(body["privacy"])
                return cells_of(body, name)

            result = measure(run, args.runs)
            # Where the time goes: the same runs again with each phase timed (kept apart from
            # the timed runs above, so those run SafeRoom's code untouched).
            with phase_timer(service) as phases:
                for _ in range(args.runs):
                    run()
            report["queries"][name] = {**result, "privacy": privacy, "phases": phases}
    finally:
        service.close()
        room.close()
    write_report(args.out, report)


@contextlib.contextmanager
def phase_timer(service: Any) -> Iterator[dict[str, float]]:
    """Median ms of each phase of `QueryService.run`, by wrapping what it calls, then undoing it."""
    from saferoom.query import service as module
    from saferoom.recorder import Call

    samples: dict[str, list[float]] = {}
    targets = [(service, "check", "parse + policy + calibrate"),
               (service.ledger, "spend", "budget debit (durable)"),
               (service._engine, "compute", "DuckDB compute"),
               (module, "release", "noise + suppression"),
               (Call, "record", "audit record")]
    originals = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in targets]

    def timed(f: Any, label: str) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                samples.setdefault(label, []).append((time.perf_counter() - t) * 1000)
        return wrapper

    medians: dict[str, float] = {}
    for (obj, attr, label), (_, _, f) in zip(targets, originals, strict=True):
        setattr(obj, attr, timed(f, label))
    try:
        yield medians
    finally:
        for obj, attr, f in originals:
            if obj in (service, service.ledger, service._engine):
                delattr(obj, attr)  # the instance attribute shadowed the method
            else:
                setattr(obj, attr, f)
        medians.update({k: statistics.median(v) for k, v in samples.items()})


def worker_http(args: argparse.Namespace) -> None:
    from saferoom import synthetic
    from tests.integration.conftest import start_server
    from tests.integration.helpers import agree

    (Path(args.work) / "http").mkdir(parents=True, exist_ok=True)
    server = start_server(Path(args.work) / "http" / "data")
    pid = server.process.pid
    try:
        t = time.perf_counter()
        dept = server.new_principal("department", "market regulation")
        bank = server.new_principal("bank", "bench bank")
        with server.client(dept["token"]) as c:
            for name in DATASETS:
                ds = c.post("/v1/datasets", json=synthetic.DATASET_SPECS[name].body).json()
                r = c.put(f"/v1/datasets/{ds['id']}/data", headers=PARQUET, timeout=900,
                          content=(Path(args.data) / f"{name}.parquet").read_bytes())
                assert r.status_code == 200, r.text
                r = c.put(f"/v1/datasets/{ds['id']}/policy", json=policy())
                assert r.status_code == 200, r.text
        agree(server, bank["id"], list(DATASETS), [PURPOSE])
        report: dict[str, Any] = {"system": "SafeRoom over HTTP",
                                  "setup_s": time.perf_counter() - t,
                                  "setup_rss_mb": peak_mb(pid), "versions": {}, "queries": {}}
        with server.client(bank["token"]) as c:  # one keep-alive connection, sequential
            for name, sql in SQL.items():
                body = {"sql": sql, "epsilon": args.epsilon, "purpose": PURPOSE}

                def run(body: dict = body, name: str = name) -> Cells:
                    r = c.post("/v1/queries", json=body, timeout=300)
                    assert r.status_code == 200, r.text
                    return cells_of(r.json(), name)

                report["queries"][name] = measure(run, args.http_runs, pid=pid)
    finally:
        server.stop()
    write_report(args.out, report)


# ----------------------------------------------------------------------------- orchestration


def ensure_venv(path: Path, requirements: list[str]) -> Path:
    """The peer's own venv, made (or remade when the pins change) with the ordinary pip."""
    stamp = path / ".bench-requirements"
    wanted = "\n".join(requirements)
    python = path / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"making {path.relative_to(REPO)} ({', '.join(requirements)}) …", file=sys.stderr)
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *requirements], check=True)
    stamp.write_text(wanted)
    return python


def write_data(rows: int, seed: int, data: Path) -> None:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from saferoom import synthetic

    frames = synthetic.generate(rows, seed=seed)
    for name in DATASETS:
        pq.write_table(pa.Table.from_pandas(frames[name], preserve_index=False),
                       data / f"{name}.parquet")
    del frames
    # For the peers that cannot join: the join done outside DP (one row per enterprise still).
    duckdb.sql(
        f"COPY (SELECT m.uscc, m.region, m.industry, t.annual_tax "
        f"FROM read_parquet('{data}/market_registry.parquet') m "
        f"JOIN read_parquet('{data}/tax_annual.parquet') t USING (uscc)) "
        f"TO '{data}/q2_joined.parquet' (FORMAT parquet)"
    )
    columns = {c["name"]: c for c in synthetic.DATASET_SPECS["market_registry"].body["columns"]}
    (data / "domains.json").write_text(json.dumps(
        {d: columns[d]["values"] for d in ("region", "industry")}, ensure_ascii=False))


def run_worker(label: str, cmd: list[str], out: Path, log: Path) -> dict[str, Any] | None:
    print(f"running {label} …", file=sys.stderr)
    t = time.perf_counter()
    with open(log, "wb") as f:
        rc = subprocess.run([*cmd, "--out", str(out)], stdout=f, stderr=subprocess.STDOUT,
                            cwd=REPO, timeout=3600).returncode
    print(f"  {label}: {time.perf_counter() - t:.0f} s, exit {rc}", file=sys.stderr)
    if rc != 0 or not out.exists():
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        return None
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def merge(rounds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One report from several rounds: runs pooled, first runs and setups by median, peaks max."""
    if not rounds:
        return None
    out = {**rounds[0], "setup_s": statistics.median(r["setup_s"] for r in rounds),
           "setup_rss_mb": max(r["setup_rss_mb"] for r in rounds), "rounds": len(rounds),
           "queries": {}}
    for q, first in rounds[0]["queries"].items():
        results = [r["queries"][q] for r in rounds if q in r["queries"]]
        if "cannot" in first:
            out["queries"][q] = first
            continue
        merged = {**first,
                  "times_s": [t for res in results for t in res["times_s"]],
                  "released": [c for res in results for c in res["released"]],
                  "first_s": statistics.median(res["first_s"] for res in results),
                  "rss_mb": max(res["rss_mb"] for res in results)}
        if "phases" in first:
            merged["phases"] = {k: statistics.median(res["phases"][k] for res in results)
                                for k in first["phases"]}
        out["queries"][q] = merged
    return out


def relative_errors(truth: Cells, released: list[Cells], aggregate: str) -> tuple[float, float]:
    """Mean |released - exact| / |exact| over released cells of all runs; cells per run.

    A suppressed (None) or missing cell is not an error term: it is counted as not released, and
    so is a non-finite one (a peer's mean over a noisy count of 0). Cells whose exact value is
    0 have no relative error and are left out (there are none at 1M rows).
    """
    rel, cells = [], 0
    for run in released:
        for group, exact in truth.items():
            value = run.get(group, {}).get(aggregate)
            if value is None or not math.isfinite(value):
                continue
            cells += 1
            if exact[aggregate]:
                rel.append(abs(value - exact[aggregate]) / abs(exact[aggregate]))
    return (statistics.fmean(rel) if rel else float("nan")), cells / max(len(released), 1)


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7, help="timed runs after a first one")
    ap.add_argument("--http-runs", type=int, default=40, help="timed requests per query")
    ap.add_argument("--epsilon", type=float, default=1.0, help="ε of every query, every system")
    ap.add_argument("--rounds", type=int, default=3, help="times every system is run; pooled")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, logs, JSON)")
    ap.add_argument("--worker", choices=["floor", "inprocess", "http"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        {"floor": worker_floor, "inprocess": worker_inprocess, "http": worker_http}[args.worker](
            args)
        return

    pythons = {label: ensure_venv(venv, reqs) for label, (venv, reqs, _) in PEERS.items()}
    work = Path(tempfile.mkdtemp(prefix="saferoom-bench-q-"))
    data = work / "data"
    data.mkdir()
    load_before = os.getloadavg()
    t = time.perf_counter()
    write_data(args.rows, args.seed, data)
    print(f"generated {args.rows:,} enterprises in {time.perf_counter() - t:.0f} s",
          file=sys.stderr)

    common = ["--data", str(data), "--runs", str(args.runs), "--epsilon", str(args.epsilon)]
    me = [sys.executable, str(Path(__file__).resolve())]

    def jobs(r: int) -> list[tuple[str, list[str]]]:
        rooms = ["--work", str(work / f"round{r}")]  # a fresh room and server data per round
        return [
            ("floor", [*me, "--worker", "floor", *common]),
            ("inprocess", [*me, "--worker", "inprocess", *rooms, *common]),
            ("http", [*me, "--worker", "http", *rooms, "--http-runs", str(args.http_runs),
                      *common]),
            *[(label, [str(pythons[label]), str(runner), "--rows", str(args.rows), *common])
              for label, (_, _, runner) in PEERS.items()],
        ]

    # Rounds: the machine is shared, and a burst of someone else's tests can cover one system's
    # whole measurement; pooling the runs of several rounds keeps one burst from deciding it.
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in jobs(0)}
    for r in range(args.rounds):
        print(f"round {r + 1} of {args.rounds}", file=sys.stderr)
        for i, (label, cmd) in enumerate(jobs(r)):
            report = run_worker(label, cmd, work / f"{r}-{i}.json", work / f"{r}-{i}.log")
            if report is not None:
                rounds[label].append(report)
    reports = {label: merge(rs) for label, rs in rounds.items()}
    load_after = os.getloadavg()
    try:
        print_tables(args, reports, load_before, load_after)
    finally:
        if args.keep:
            print(f"\nkept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- the tables

NAMES = {"floor": "plain DuckDB, exact (floor)", "inprocess": "SafeRoom in process",
         "http": "SafeRoom over HTTP", "SmartNoise SQL": "SmartNoise SQL",
         "OpenDP polars Context": "OpenDP polars Context"}


def print_tables(args: argparse.Namespace, reports: dict[str, dict[str, Any] | None],
                 load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    floor = reports["floor"]
    assert floor is not None, "the floor failed: nothing to compare with"
    truth = {q: floor["queries"][q]["released"][0] for q in SQL}
    medians: dict[tuple[str, str], float] = {}
    errors: dict[tuple[str, str], dict[str, float]] = {}

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "saferoom", "policies", "audit"],
                           cwd=REPO, capture_output=True, text=True).stdout.strip()
    print(f"\nSafeRoom at {head or '?'}{' + uncommitted changes' if dirty else ''}; "
          f"{os.cpu_count()} cores")
    print(f"\n{args.rows:,} enterprises, ε = {args.epsilon:g} per query for every system; "
          f"{args.rounds} rounds, each system in its own process, each round {args.runs} timed "
          f"runs after a first one ({args.http_runs} requests over HTTP); medians of the pooled "
          f"runs; 1-min load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
    print("| query | system | median ms | p50 / p99 ms | × floor | first run ms "
          "| peak RSS MB | mean rel. error | cells released |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    for q in SQL:
        spec = QUERIES[q]
        for label, name in NAMES.items():
            report = reports.get(label)
            entries = [(q, name)]
            if report is not None and f"{q}*" in report["queries"]:
                entries.append((f"{q}*", f"{name} — on a table joined outside DP"))
            for qq, shown in entries:
                if report is None:
                    print(f"| {qq} | {shown} | failed: see stderr | | | | | | |")
                    continue
                res = report["queries"].get(qq)
                if res is None or "cannot" in res:
                    why = (res or {}).get("cannot", "not run").split("\\n")[0]
                    why = " ".join(why.split())
                    why = re.sub(r"<[^<>]* object at 0x[0-9a-f]+>", "…", why).replace("|", "/")
                    print(f"| {qq} | {shown} | cannot: {why[:220]} | | | | | | |")
                    continue
                times = [s * 1000 for s in res["times_s"]]
                med = statistics.median(times)
                medians[(qq, label)] = med
                pp = (f"{percentile(times, 50):.1f} / {percentile(times, 99):.1f}"
                      if label == "http" else "")
                ratio = med / medians[(q, "floor")]
                errs, cells = {}, []
                for a in spec["aggregates"]:
                    errs[a], n = relative_errors(truth[q], res["released"], a)
                    cells.append(n)
                errors[(qq, label)] = errs
                err_text = " · ".join(
                    (f"{a} {e:.2e}" if len(errs) > 1 else f"{e:.2e}") for a, e in errs.items())
                if label == "floor":
                    err_text = "0 (exact)"
                total = len(truth[q]) * len(spec["aggregates"])
                print(f"| {qq} | {shown} | {med:,.1f} | {pp} | {ratio:.2f} "
                      f"| {res['first_s'] * 1000:,.0f} | {res['rss_mb']:,.0f} "
                      f"| {err_text} | {sum(cells):g}/{total} |")

    print("\n| system | setup s | what setup is | peak RSS MB in setup |")
    print("|---|---:|---|---:|")
    what = {"floor": "Parquet into native DuckDB tables",
            "inprocess": "create room; validate, seal and store both datasets; policies",
            "http": "PUT /data both datasets (validate + seal), policies, agreement",
            "SmartNoise SQL": "Parquet into pandas; from_df (copies into SQLite)",
            "OpenDP polars Context": "Parquet into polars; one compositor per query"}
    for label, name in NAMES.items():
        report = reports.get(label)
        if report is not None:
            versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
            if report["rounds"] < args.rounds:
                versions += f"; only {report['rounds']} of {args.rounds} rounds ran"
            print(f"| {name}{f' ({versions})' if versions else ''} | {report['setup_s']:.1f} "
                  f"| {what[label]} | {report['setup_rss_mb']:,.0f} |")

    print("\nGoals (issue 4):")
    for q in SQL:
        sr = medians.get((q, "inprocess"))
        if sr is None:
            continue
        line = f"- {q}: SafeRoom in process {sr / medians[(q, 'floor')]:.2f}× the floor (goal ≤ 2)"
        for label in PEERS:
            peer = medians.get((q, label)) or medians.get((f"{q}*", label))
            star = "*" if (q, label) not in medians and peer else ""
            line += (f"; {peer / sr:.0f}× faster than {label}{star} (goal ≥ 25)" if peer
                     else f"; {label} cannot")
        print(line)
    http = reports.get("http")
    if http is not None and "Q2" in http["queries"]:
        p50 = percentile([s * 1000 for s in http["queries"]["Q2"]["times_s"]], 50)
        print(f"- Q2 over HTTP p50 {p50:.1f} ms (goal < 150 ms)")
    for q in SQL:
        mine = errors.get((q, "inprocess"))
        for label in PEERS:
            theirs = errors.get((q, label)) or errors.get((f"{q}*", label))
            if mine and theirs:
                parts = [f"{a} {mine[a] / theirs[a]:.2f}×" for a in mine if theirs.get(a)]
                print(f"- {q} error, SafeRoom / {label}: {', '.join(parts)} (goal ≤ 1)")
    privacy = (reports.get("inprocess") or {}).get("queries", {})
    for q in SQL:
        p = privacy.get(q, {}).get("privacy")
        if p:
            print(f"- SafeRoom {q}: ε split over {p['epsilon_split']} quantities; noise scale "
                  + ", ".join(f"{k} {v:,.4g}" for k, v in p["noise_scale"].items()))
    for q in SQL:
        phases = privacy.get(q, {}).get("phases")
        if phases:
            print(f"- SafeRoom {q} in process, median ms per phase: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    for label in PEERS:
        report = reports.get(label)
        for q, res in (report or {}).get("queries", {}).items():
            if "summary" in res:
                print(f"\n{label} {q} noise:\n{res['summary']}")
            if "statistics" in res:
                print(f"- {label} {q}: {res['statistics']:g} statistics at "
                      f"ε {res['epsilon_per_statistic']:.4g} each")


if __name__ == "__main__":
    main()
