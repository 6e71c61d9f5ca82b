"""Spare jails: started ahead with modules preloaded, each still serving exactly one job."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import BubblewrapRunner, JailResult
from tests.sandbox.conftest import TEST_LIMITS, is_running, jail_processes, run_code

LOOK = """
import os, sys
def attack(inputs, params, blobs):
    seen = sorted(os.listdir("/tmp"))
    open("/tmp/mark", "w").write("x")
    return {"values": {"preloaded": "toymodels.entry" in sys.modules, "tmp": seen}}
"""

SLOW = """
import time
def attack(inputs, params, blobs):
    time.sleep(1.5)
    return {}
"""


def wait_for_spare(runner: BubblewrapRunner) -> None:
    deadline = time.monotonic() + 30
    while not runner.spares.ready(TEST_LIMITS):
        assert time.monotonic() < deadline, "no spare jail started"
        time.sleep(0.02)


@pytest.fixture
def spare_runner(model_package: Path) -> Iterator[BubblewrapRunner]:
    runner = BubblewrapRunner(import_roots=[model_package])
    runner.keep_spare(TEST_LIMITS, preload=("toymodels.entry",))
    yield runner
    runner.close()


def test_a_spare_serves_one_job_with_its_modules_already_imported(spare_runner):
    results = []
    for _ in range(3):
        wait_for_spare(spare_runner)
        results.append(run_code(spare_runner, LOOK))
    for result in results:
        assert result.ok, result.error
        assert result.values == {"preloaded": True, "tmp": []}  # a fresh jail every time


def test_other_limits_start_cold_without_the_preload(spare_runner):
    wait_for_spare(spare_runner)
    result = run_code(spare_runner, LOOK, limits=TEST_LIMITS.with_changes(cpu_seconds=61))
    assert result.ok, result.error
    assert result.values["preloaded"] is False
    assert spare_runner.spares.ready(TEST_LIMITS)  # still there for its own kind


def test_a_spare_killed_while_waiting_is_replaced_and_the_job_still_runs(spare_runner):
    wait_for_spare(spare_runner)
    victim = spare_runner.spares._ready[TEST_LIMITS][0]
    os.killpg(victim.popen.pid, signal.SIGKILL)
    victim.wait(10)
    result = run_code(spare_runner, LOOK)
    assert result.ok, result.error
    wait_for_spare(spare_runner)
    assert run_code(spare_runner, LOOK).values["preloaded"] is True


def test_close_leaves_no_jail_behind_and_jobs_still_run_cold(model_package: Path):
    runner = BubblewrapRunner(import_roots=[model_package])
    runner.keep_spare(TEST_LIMITS, preload=("toymodels.entry",))
    wait_for_spare(runner)
    # The spare is a real, waiting jail: its launcher stages the jail as root, then drops to
    # the jail uid, so look until it has.
    deadline = time.monotonic() + 30
    while not (spare := jail_processes()):
        assert time.monotonic() < deadline, "the spare never ran as the jail uid"
        time.sleep(0.02)
    runner.close()
    assert jail_processes() == []
    assert [pid for pid in spare if is_running(pid)] == []  # nor reparented out of our tree
    result = run_code(runner, LOOK)
    assert result.ok, result.error
    assert result.values["preloaded"] is False
    assert jail_processes() == []


def test_the_next_spare_starts_only_once_no_job_runs(spare_runner):
    # Its start and imports would otherwise take CPU from the job it is waiting behind.
    wait_for_spare(spare_runner)
    done: list[JailResult] = []
    job = threading.Thread(target=lambda: done.append(run_code(spare_runner, SLOW)))
    job.start()
    time.sleep(0.7)
    assert not spare_runner.spares.ready(TEST_LIMITS)
    assert not spare_runner.spares._pending.get(TEST_LIMITS)  # nor is one being started
    job.join()
    assert done[0].ok, done[0].error
    wait_for_spare(spare_runner)


def test_two_kept_serve_two_jobs_back_to_back_with_their_imports_done(model_package: Path):
    runner = BubblewrapRunner(import_roots=[model_package])
    try:
        runner.keep_spare(TEST_LIMITS, preload=("toymodels.entry",), count=2)
        deadline = time.monotonic() + 30
        while runner.spares.ready(TEST_LIMITS) < 2:
            assert time.monotonic() < deadline, "two spares did not start"
            time.sleep(0.02)
        time.sleep(1)  # their imports
        first, second = run_code(runner, LOOK), run_code(runner, LOOK)
        assert first.values == second.values == {"preloaded": True, "tmp": []}
        while runner.spares.ready(TEST_LIMITS) < 2:  # and both are replaced
            assert time.monotonic() < deadline + 30, "the spares were not replaced"
            time.sleep(0.02)
    finally:
        runner.close()
    assert jail_processes() == []
