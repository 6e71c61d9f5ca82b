"""What every worker of bench/queries.py shares: timing, peak RSS, the JSON it hands back.

Standard library only: the peers import it from their own venvs, SafeRoom's workers from the
main one. A worker writes one JSON document (see `Report`) to the path given with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Released cells of one run: group key ("410302", or "410302|制造业") -> aggregate -> value.
# A value of None is a cell the system suppressed; a missing group is one it did not release.
Cells = dict[str, dict[str, float | int | None]]

# The queries, by name: group-by columns and the aggregates every system reports under these
# names. The SQL and the peers' expressions live with each runner.
QUERIES: dict[str, dict[str, list[str]]] = {
    "Q1": {"groups": ["region"], "aggregates": ["n"]},
    "Q2": {"groups": ["region", "industry"], "aggregates": ["n", "avg_tax"]},
    "Q3": {"groups": ["industry"], "aggregates": ["sum_capital"]},
}


def reset_peak(pid: int | str = "self") -> bool:
    """Reset the peak RSS (VmHWM) of a process (Linux ≥ 4.0): per-query peaks, not setup's."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb(pid: int | str = "self") -> float:
    """Peak resident set size since start or the last `reset_peak`, in MiB.

    NaN if another process's peak cannot be read (gone, or no VmHWM): never our own instead.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if str(pid) not in ("self", str(os.getpid())):
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def key(values: list[Any] | tuple[Any, ...]) -> str:
    return "|".join(str(v) for v in values)


def measure(run: Callable[[], Cells], runs: int, pid: int | str = "self") -> dict[str, Any]:
    """One cold/first run, then `runs` timed runs; the peak RSS of `pid` over all of them."""
    reset_peak(pid)
    t = time.perf_counter()
    first = run()
    first_s = time.perf_counter() - t
    times, released = [], [first]
    for _ in range(runs):
        t = time.perf_counter()
        cells = run()
        times.append(time.perf_counter() - t)
        released.append(cells)
    return {"first_s": first_s, "times_s": times, "rss_mb": peak_mb(pid), "released": released}


def cannot(reason: str) -> dict[str, Any]:
    return {"cannot": reason}


def write_report(path: str, report: dict[str, Any]) -> None:
    """{"system", "setup_s", "setup_rss_mb", "versions", "queries": {name: measure()|cannot()}}"""
    Path(path).write_text(json.dumps(report, ensure_ascii=False, default=float))


def peer_args() -> argparse.Namespace:
    """The command line every peer worker takes from bench/queries.py."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", required=True)
    return ap.parse_args()
