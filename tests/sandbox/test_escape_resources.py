"""Resource attacks are contained: each ends with the limit named, the jail gone, the host fine."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.sandbox.conftest import (
    REPO,
    TEST_LIMITS,
    host_is_fine,
    is_running,
    jail_processes,
    jails_seen,
    run_code,
    wait_gone,
)

FORK_BOMB = """
import os, time

def attack(inputs, params, blobs):
    while True:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
"""

EXPONENTIAL_FORK_BOMB = """
import os

def attack(inputs, params, blobs):
    while True:
        os.fork()
"""

THREAD_BOMB = """
import threading, time

def attack(inputs, params, blobs):
    while True:
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
"""


@pytest.mark.slow
@pytest.mark.parametrize("bomb", [FORK_BOMB, EXPONENTIAL_FORK_BOMB, THREAD_BOMB],
                         ids=["fork", "exponential-fork", "threads"])
def test_fork_bomb_is_contained(runner, bomb):
    with jails_seen() as seen:
        result = run_code(runner, bomb, limits=TEST_LIMITS.with_changes(max_processes=24))
    assert result.status == "limit"
    assert result.limit == "processes"
    assert seen, "the jail was never seen running"
    # Every child died with the jail's pid namespace: none is left below us, and none of those
    # seen running lives on elsewhere (reparented to pid 1).
    assert jail_processes() == []
    assert [pid for pid in seen if is_running(pid)] == []
    host_is_fine(runner)


@pytest.mark.parametrize(
    "source",
    [
        """
        def attack(inputs, params, blobs):
            hoard = []
            while True:
                hoard.append(bytearray(64 << 20))
        """,
        """
        import numpy as np

        def attack(inputs, params, blobs):
            return {"values": {"sum": int(np.ones(1 << 34, dtype=np.uint8).sum())}}
        """,
        """
        import pyarrow as pa

        def attack(inputs, params, blobs):
            return {"values": {"n": pa.allocate_buffer(1 << 34).size}}
        """,
    ],
    ids=["python", "numpy", "arrow"],
)
def test_memory_bomb_hits_the_address_space_limit(runner, source):
    result = run_code(runner, source, limits=TEST_LIMITS.with_changes(memory_bytes=1536 << 20))
    assert result.status == "limit"
    assert result.limit == "memory"
    host_is_fine(runner)


@pytest.mark.slow
@pytest.mark.parametrize("ignore_sigxcpu", [False, True])
def test_cpu_spin_is_killed_at_the_cpu_limit(runner, ignore_sigxcpu):
    result = run_code(
        runner,
        """
        import signal

        def attack(inputs, params, blobs):
            if params["ignore"]:
                signal.signal(signal.SIGXCPU, signal.SIG_IGN)
            while True:
                pass
        """,
        params={"ignore": ignore_sigxcpu},
        limits=TEST_LIMITS.with_changes(cpu_seconds=2, wall_seconds=60),
    )
    assert result.status == "limit"
    assert result.limit == "cpu"
    assert result.cpu_seconds >= 1  # measured by the kernel for the whole jail, not reported by it
    host_is_fine(runner)


@pytest.mark.slow
def test_sleeping_job_is_killed_at_the_wall_clock_limit(runner):
    result = run_code(
        runner,
        """
        import time

        def attack(inputs, params, blobs):
            time.sleep(3600)
        """,
        limits=TEST_LIMITS.with_changes(wall_seconds=2),
    )
    assert result.status == "limit"
    assert result.limit == "wall"
    host_is_fine(runner)


def test_disk_fill_of_tmp_is_contained(runner):
    result = run_code(
        runner,
        """
        def attack(inputs, params, blobs):
            n = 0
            while True:
                with open(f"/tmp/fill-{n}", "wb") as f:
                    f.write(b"x" * (1 << 20))
                n += 1
        """,
        limits=TEST_LIMITS.with_changes(tmpfs_bytes=8 << 20, file_size_bytes=4 << 20),
    )
    assert result.status == "limit"
    assert result.limit == "disk"
    host_is_fine(runner)


def test_one_big_file_hits_the_file_size_limit(runner):
    result = run_code(
        runner,
        """
        def attack(inputs, params, blobs):
            with open("/tmp/big", "wb") as f:
                while True:
                    f.write(b"x" * (1 << 20))
        """,
        limits=TEST_LIMITS.with_changes(tmpfs_bytes=16 << 20, file_size_bytes=2 << 20),
    )
    assert result.status == "limit"
    assert result.limit == "file_size"


def test_too_many_open_files(runner):
    result = run_code(
        runner,
        """
        def attack(inputs, params, blobs):
            return {"values": {"n": len([open("/dev/null") for _ in range(100000)])}}
        """,
        limits=TEST_LIMITS.with_changes(open_files=64),
    )
    assert result.status == "limit"
    assert result.limit == "open_files"


@pytest.mark.slow
@pytest.mark.parametrize("stream", [1, 2], ids=["stdout", "stderr"])
def test_a_gigabyte_of_output_is_capped_and_killed(runner, stream):
    result = run_code(
        runner,
        """
        import os

        def attack(inputs, params, blobs):
            chunk = b"y" * (1 << 20)
            for _ in range(1024):
                os.write(params["fd"], chunk)
        """,
        params={"fd": stream},
        limits=TEST_LIMITS.with_changes(log_bytes=64 << 10),
    )
    assert result.status == "limit"
    assert result.limit == "log"
    captured = result.stdout if stream == 1 else result.stderr
    assert len(captured) == 64 << 10
    host_is_fine(runner)


def test_result_over_the_output_cap_is_refused(runner):
    result = run_code(
        runner,
        """
        def attack(inputs, params, blobs):
            return {"blobs": {"big": b"z" * (4 << 20)}}
        """,
        limits=TEST_LIMITS.with_changes(output_bytes=1 << 20),
    )
    assert result.status == "limit"
    assert result.limit == "output"
    assert result.blobs == {}


SERVICE = """
import sys, time
sys.path.insert(0, {repo!r})
from sandbox import BubblewrapRunner, JailJob, JOB_LIMITS

job = JailJob(entry="user_code:f", limits=JOB_LIMITS["train"], code=(
    "import os, time\\n"
    "def f(inputs, params, blobs):\\n"
    "    os.fork()\\n"
    "    time.sleep(600)\\n"))
print("starting", flush=True)
BubblewrapRunner().run(job)
"""


@pytest.mark.slow
def test_jails_die_with_a_crashed_service():
    """--die-with-parent: a service killed with SIGKILL leaves no jail process running."""
    service = subprocess.Popen([sys.executable, "-c", SERVICE.format(repo=str(REPO))],
                               stdout=subprocess.PIPE, text=True)
    assert service.stdout is not None
    assert service.stdout.readline().strip() == "starting"
    deadline = time.monotonic() + 60
    while not jail_processes(service.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert jail_processes(service.pid), "the jail never started"
    time.sleep(0.5)  # let the job fork its second process
    # Its launcher is about to die: the jail may be reparented out of our tree (to pid 1), so
    # these very processes are followed until they end.
    jailed = jail_processes(service.pid)
    assert jailed
    service.kill()
    service.wait()
    service.stdout.close()
    wait_gone(jailed, max(0.0, deadline - time.monotonic()))
