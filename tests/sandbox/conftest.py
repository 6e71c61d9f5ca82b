"""A real bubblewrap runner over a throwaway model package, and helpers that run hostile code.

Escape tests fail (not skip) when bubblewrap is missing: CI must always exercise the real jail.
"""

from __future__ import annotations

import os
import socket
import textwrap
from collections.abc import Iterator
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


def jail_uid_processes() -> list[int]:
    """Live (not zombie) host processes of the jail uid: none may outlive its jail."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields.get("Uid", "0").split()[0])
        if uid == JAIL_UID and not fields.get("State", "").strip().startswith("Z"):
            pids.append(int(entry.name))
    return pids


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
    assert jail_uid_processes() == []
