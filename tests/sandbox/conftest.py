"""A real bubblewrap runner over a throwaway model package, and helpers that run hostile code.

Escape tests fail (not skip) when bubblewrap is missing: CI must always exercise the real jail.
"""

from __future__ import annotations

import os
import socket
import textwrap
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sandbox import JOB_LIMITS, BubblewrapRunner, JailJob, JailLimits, JailResult, check_jail

REPO = Path(__file__).resolve().parents[2]
JAIL_UID = 65534

# Small enough that a hostile job ends fast, large enough for pandas and scikit-learn.
TEST_LIMITS = JOB_LIMITS["dry_run"].with_changes(
    cpu_seconds=60,
    memory_bytes=2 << 30,
    max_processes=48,
    file_size_bytes=8 << 20,
    output_bytes=8 << 20,
    wall_seconds=60,
    tmpfs_bytes=16 << 20,
    log_bytes=256 << 10,
)

MODEL_PACKAGE = '''
"""A throwaway model package for the tests: train, score once, and a warm scorer."""
'''

MODEL_ENTRY = '''
import os
import pickle

import numpy as np
import pyarrow as pa


def features(table):
    return np.column_stack([table.column(n).to_numpy() for n in ("turnover", "arrears")])


def train(inputs, params, blobs):
    from sklearn.linear_model import LogisticRegression

    frame = inputs["train"].to_pandas()
    model = LogisticRegression(C=params.get("C", 1.0)).fit(
        frame[["turnover", "arrears"]].to_numpy(), frame["default"].to_numpy()
    )
    # pickle only ever runs inside a jail: the artifact leaves as opaque bytes.
    return {
        "blobs": {"model": pickle.dumps(model)},
        "values": {"rows": len(frame), "accuracy": float(model.score(
            frame[["turnover", "arrears"]].to_numpy(), frame["default"].to_numpy()))},
    }


def score(inputs, params, blobs):
    model = pickle.loads(blobs["model"])
    p = model.predict_proba(features(inputs["applicants"]))[:, 1]
    return {"tables": {"scores": pa.table({"p_default": p})}, "values": {"n": len(p)}}


def load_scorer(blobs):
    model = pickle.loads(blobs["model"])
    calls = []

    def answer(inputs, params):
        calls.append(1)
        if params.get("crash"):
            os._exit(3)
        p = model.predict_proba(features(inputs["applicants"]))[:, 1]
        return {"tables": {"scores": pa.table({"p_default": p})}, "values": {"calls": len(calls)}}

    return answer
'''


@pytest.fixture(scope="session")
def model_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("roots") / "toymodels"
    root.mkdir()
    (root / "__init__.py").write_text(MODEL_PACKAGE)
    (root / "entry.py").write_text(MODEL_ENTRY)
    return root


@pytest.fixture(scope="session")
def runner(model_package: Path) -> BubblewrapRunner:
    jail = BubblewrapRunner(import_roots=[model_package])
    check_jail(jail)  # raises JailUnavailable (a failure, not a skip) without a working jail
    return jail


def run_code(
    runner: BubblewrapRunner,
    source: str,
    *,
    params: dict[str, Any] | None = None,
    inputs: dict[str, pa.Table] | None = None,
    limits: JailLimits = TEST_LIMITS,
    entry: str = "user_code:attack",
) -> JailResult:
    """Run `source` (defining `attack(inputs, params, blobs)`) as a bank's custom code."""
    return runner.run(
        JailJob(
            entry=entry,
            code=textwrap.dedent(source),
            params=params or {},
            inputs=inputs or {},
            limits=limits,
        )
    )


def everything_said(result: JailResult) -> str:
    """All text a jail got back to the service, to search for leaked secrets."""
    return repr(result.values) + (result.error or "") + result.stdout + result.stderr + repr(
        result.blobs
    )


def _proc_status(pid: int | str) -> dict[str, str] | None:
    """The fields of /proc/<pid>/status; None if the process is gone (or unreadable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return {k: v.strip() for k, v in (line.split(":", 1) for line in status.splitlines()
                                      if ":" in line)}


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie has ended: only its exit status is left)."""
    status = _proc_status(pid)
    return status is not None and not status.get("State", "").startswith("Z")


def jail_processes(under: int | None = None) -> list[int]:
    """Live (not zombie) processes of the jail uid below `under` (default: this test process).

    Only our own jails: other test runs on the host start jails under the same uid. A jail
    whose launcher was killed may be reparented out of this tree (to pid 1): a test that kills
    a jail's parent snapshots the pids first and waits for those (`wait_gone`).
    """
    root = os.getpid() if under is None else under
    parents: dict[int, int] = {}
    jailed: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        status = _proc_status(entry.name)
        if status is None:
            continue
        pid = int(entry.name)
        parents[pid] = int(status.get("PPid", "0"))
        live = not status.get("State", "").startswith("Z")
        if live and int(status.get("Uid", "0").split()[0]) == JAIL_UID:
            jailed.append(pid)
    found = []
    for pid in jailed:
        up, seen = parents.get(pid, 0), {pid}
        while up > 0 and up != root and up not in seen:  # pid 0: above init, or gone meanwhile
            seen.add(up)
            up = parents.get(up, 0)
        if up == root:
            found.append(pid)
    return sorted(found)


@contextmanager
def jails_seen(under: int | None = None) -> Iterator[set[int]]:
    """Every jail process below `under` seen (polled) while the block runs: they can then be
    followed wherever they are reparented."""
    seen: set[int] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.update(jail_processes(under))
            stop.wait(0.02)

    watcher = threading.Thread(target=poll, name="jails-seen", daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()


def wait_gone(pids: Iterable[int], seconds: float = 10.0) -> None:
    """Wait for exactly these processes to end; fail naming the ones still running."""
    pids, deadline = list(pids), time.monotonic() + seconds
    while left := [pid for pid in pids if is_running(pid)]:
        assert time.monotonic() < deadline, f"jail processes still running: {left}"
        time.sleep(0.05)


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    """A real TCP listener on the host's loopback: the service's own port, as far as a jail knows."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def host_is_fine(runner: BubblewrapRunner) -> None:
    """The service can still start processes and run a fresh jail, and no jail process is left."""
    assert os.system("true") == 0
    follow_up = run_code(runner, "def attack(inputs, params, blobs):\n    return {'values': {'ok': 1}}")
    assert follow_up.ok, follow_up.error
    assert jail_processes() == []
