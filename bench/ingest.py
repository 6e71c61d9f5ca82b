"""Upload a generated 1,000,000-row CSV through the running server; compare with DuckDB's read_csv.

Run: `.venv/bin/python bench/ingest.py [--rows N] [--runs K]` (prints a Markdown table).
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
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from _common import peak_mb

from saferoom import synthetic
from tests.integration.conftest import start_server


def file_chunks(path: Path, size: int = 1 << 20):  # type: ignore[no-untyped-def]
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="saferoom-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # a 1M-row CSV, a whole room
    frame = synthetic.generate(args.rows, seed=1)["market_registry"]
    csv_path = work / "market_registry.csv"
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), csv_path)
    size_mb = csv_path.stat().st_size / 1e6
    rows = len(frame)
    del frame

    duck = []
    for _ in range(args.runs):
        t = time.perf_counter()
        con = duckdb.connect()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv_path}')")
        n = con.execute("SELECT count(*) FROM t").fetchone()
        duck.append(time.perf_counter() - t)
        con.close()
        assert n == (rows,), n

    server = start_server(work / "data")
    try:
        dept = server.new_principal("department", "market regulation")
        spec = synthetic.DATASET_SPECS["market_registry"].body
        with server.client(dept["token"]) as c:
            ds = c.post("/v1/datasets", json=spec).json()
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                r = c.put(f"/v1/datasets/{ds['id']}/data", content=file_chunks(csv_path),
                          headers={"Content-Type": "text/csv"}, timeout=600)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
                assert r.json()["rows"] == rows
        rss = peak_mb(server.process.pid)
    finally:
        server.stop()

    med, dmed = statistics.median(times), statistics.median(duck)
    print(f"\n{rows:,} rows, {size_mb:.0f} MB CSV (market_registry), median of {args.runs} runs\n")
    print("| what | median s | rows/s | peak RSS MB |")
    print("|---|---:|---:|---:|")
    print(f"| SafeRoom PUT /data over HTTP (validate + seal) | {med:.2f} | {rows / med:,.0f} "
          f"| {rss:,.0f} (server) |")
    print(f"| plain DuckDB read_csv into a table (floor) | {dmed:.2f} | {rows / dmed:,.0f} | - |")
    print(f"\nSafeRoom / DuckDB: {med / dmed:.1f}x")


if __name__ == "__main__":
    main()
