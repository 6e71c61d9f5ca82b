"""Verification at bank scale: a 10,000 × 5 batch and single checks over HTTP, and the DuckDB floor.

Run: `.venv/bin/python bench/verify.py [--enterprises N] [--consents K] [--runs R]`.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from _common import peak_mb
from _room import insert_consents

from saferoom import synthetic
from tests.integration.conftest import start_server
from tests.integration.helpers import agree

PURPOSE = "loan_application"
DATASETS = ("tax_annual", "social_insurance")
CHECKS = [
    {"dataset": "tax_annual", "field": "annual_tax", "op": ">=", "value": 100_000},
    {"dataset": "tax_annual", "field": "tax_arrears", "op": "=", "value": False},
    {"dataset": "tax_annual", "field": "annual_tax", "op": "<=", "value": 5_000_000},
    {"dataset": "social_insurance", "field": "headcount", "op": ">=", "value": 10},
    {"dataset": "social_insurance", "field": "arrears_months", "op": "<=", "value": 0},
]
POLICIES = {
    "tax_annual": {"annual_tax": [">=", "<="], "tax_arrears": ["="]},
    "social_insurance": {"headcount": [">=", "<="], "arrears_months": ["<=", "="]},
}


def chunks(path: Path, size: int = 1 << 20):  # type: ignore[no-untyped-def]
    with open(path, "rb") as f:
        while block := f.read(size):
            yield block


def setup(work: Path, frames: dict, n_consents: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Load the datasets through the API, then grant consents in bulk straight into the store."""
    server = start_server(work / "data")
    try:
        dept = server.new_principal("department", "税务局")
        bank = server.new_principal("bank", "洛阳银行")
        with server.client(dept["token"]) as c:
            for name in DATASETS:
                path = work / f"{name}.csv"
                pacsv.write_csv(pa.Table.from_pandas(frames[name], preserve_index=False), path)
                ds = c.post("/v1/datasets", json=synthetic.DATASET_SPECS[name].body).json()
                r = c.put(f"/v1/datasets/{ds['id']}/data", content=chunks(path),
                          headers={"Content-Type": "text/csv"}, timeout=600)
                assert r.status_code == 200, r.text
                r = c.put(f"/v1/datasets/{ds['id']}/policy", json={"verify": {
                    "purposes": [PURPOSE], "consent_required": True, "fields": POLICIES[name],
                    "max_distinct_values_per_consent": 3}})
                assert r.status_code == 200, r.text
        agree(server, bank["id"], list(DATASETS), [PURPOSE])
    finally:
        server.stop()
    keys = frames["tax_annual"]["uscc"].to_numpy()
    consented = rng.choice(keys, size=n_consents, replace=False).astype(str)
    insert_consents(work / "data", bank["id"], PURPOSE, list(DATASETS), list(consented))
    return server.admin_token, bank, consented


def floor(work: Path, subjects: list[str], runs: int) -> float:
    con = duckdb.connect()
    for name in DATASETS:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{work / (name + '.csv')}')")
    batch = pa.table({"pos": np.arange(len(subjects)), "code": subjects})
    con.register("batch", batch)
    sql = ("SELECT b.pos, t.annual_tax >= 100000, NOT t.tax_arrears, t.annual_tax <= 5000000, "
           "s.headcount >= 10, s.arrears_months <= 0 FROM batch b "
           "LEFT JOIN tax_annual t ON t.uscc = b.code LEFT JOIN social_insurance s "
           "ON s.uscc = b.code")
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        con.sql(sql).to_arrow_table()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--enterprises", type=int, default=1_000_000)
    ap.add_argument("--consents", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--singles", type=int, default=300)
    args = ap.parse_args()
    rng = np.random.default_rng(5)
    work = Path(tempfile.mkdtemp(prefix="saferoom-bench-verify-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # a 1M-row CSV, a whole room
    frames = synthetic.generate(args.enterprises, seed=5)
    t0 = time.perf_counter()
    admin_token, bank, consented = setup(work, frames, args.consents, rng)
    setup_s = time.perf_counter() - t0
    subjects = [str(s) for s in consented[: args.batch]]

    server = start_server(work / "data", {"SAFEROOM_ADMIN_TOKEN": admin_token})
    try:
        with server.client(bank["token"]) as c:
            body = {"purpose": PURPOSE, "subjects": subjects, "checks": CHECKS}
            batch_times = []
            for _ in range(args.runs + 1):  # the first run also decrypts and indexes the data
                t = time.perf_counter()
                r = c.post("/v1/verifications", json=body, timeout=600)
                batch_times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text[:500]
            answers = r.json()["results"]
            assert len(answers) == len(subjects) * len(CHECKS)
            single_times = []
            for i in range(args.singles):
                one = {"purpose": PURPOSE, "subjects": [subjects[i % len(subjects)]],
                       "checks": [CHECKS[i % 2]]}
                t = time.perf_counter()
                r = c.post("/v1/verifications", json=one)
                single_times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
        rss = peak_mb(server.process.pid)
    finally:
        server.stop()
    floor_s = floor(work, subjects, args.runs)

    batch_med = statistics.median(batch_times[1:])
    checks = len(subjects) * len(CHECKS)
    p50, p99 = np.percentile(np.array(single_times) * 1000, [50, 99])
    answered = sum(a["answer"] is not None for a in answers)
    print(f"\n{args.enterprises:,} enterprises, {args.consents:,} consents; batch "
          f"{len(subjects):,} subjects × {len(CHECKS)} checks ({answered:,} answered, the rest "
          f"no_record); median of {args.runs} runs after a warm-up; setup {setup_s:.0f}s\n")
    print("| what | median | checks/s | p50 ms | p99 ms | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| SafeRoom batch over HTTP (decide, consent, limit, answer, {len(subjects):,} audit "
          f"events) | {batch_med * 1000:.0f} ms | {checks / batch_med:,.0f} | - | - | "
          f"{rss:,.0f} (server) |")
    print(f"| SafeRoom first batch (decrypts, prepares, indexes) | {batch_times[0] * 1000:.0f} ms "
          f"| {checks / batch_times[0]:,.0f} | - | - | - |")
    print(f"| SafeRoom single subject × single check over HTTP | - | - | {p50:.1f} | {p99:.1f} "
          f"| - |")
    print(f"| plain DuckDB, same batch as one join (floor) | {floor_s * 1000:.0f} ms | "
          f"{checks / floor_s:,.0f} | - | - | - |")


if __name__ == "__main__":
    main()
