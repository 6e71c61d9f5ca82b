"""Real jobs in a real jail: train with pandas and scikit-learn, score with the artifact, serve
batches from a warm pool, and refuse to run at all when the jail is unavailable.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from sandbox import (
    JOB_LIMITS,
    BubblewrapRunner,
    InvalidJob,
    JailJob,
    JailResult,
    JailUnavailable,
    PoolUnavailable,
    StubRunner,
    WarmPool,
    check_jail,
)
from tests.sandbox.conftest import TEST_LIMITS, run_code


def applicants(n: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"turnover": rng.normal(size=n), "arrears": rng.normal(size=n)})


@pytest.fixture(scope="module")
def trained(runner) -> dict:
    rng = np.random.default_rng(0)
    turnover, arrears = rng.normal(size=2000), rng.normal(size=2000)
    default = (arrears - turnover + rng.normal(scale=0.3, size=2000) > 0).astype(np.int8)
    result = runner.run(
        JailJob(
            entry="toymodels.entry:train",
            inputs={"train": pa.table({"turnover": turnover, "arrears": arrears,
                                       "default": default})},
            params={"C": 0.5},
            limits=JOB_LIMITS["train"],
        )
    )
    assert result.ok, (result.error, result.stderr[-2000:])
    return {"result": result}


def test_training_in_the_jail_returns_an_opaque_artifact_and_metrics(trained):
    result = trained["result"]
    assert result.values["rows"] == 2000
    assert result.values["accuracy"] > 0.8
    assert set(result.blobs) == {"model"}
    assert isinstance(result.blobs["model"], bytes)
    assert result.exit_code == 0
    assert result.cpu_seconds > 0
    assert result.peak_rss_bytes > 0


def test_peak_rss_is_the_jails_own_not_the_launching_services(runner):
    # Touch 1 GiB here first: wait4's ru_maxrss would report at least that for any jail this
    # process launches, since bwrap starts as a (v)fork of it.
    ballast = np.ones(1 << 30, dtype=np.uint8)
    try:
        small = run_code(runner, "def attack(inputs, params, blobs):\n    return {}\n")
        big = run_code(
            runner,
            "import numpy as np\n"
            "def attack(inputs, params, blobs):\n"
            "    return {'values': {'sum': int(np.ones(300 << 20, dtype=np.uint8).sum())}}\n",
        )
    finally:
        del ballast
    assert small.ok and big.ok, (small.error, big.error)
    assert 0 < small.peak_rss_bytes < 200 << 20
    assert (300 << 20) < big.peak_rss_bytes < (600 << 20)


def test_the_artifact_round_trips_into_a_second_job(runner, trained):
    rows = applicants(50)
    result = runner.run(
        JailJob(
            entry="toymodels.entry:score",
            inputs={"applicants": rows},
            blobs={"model": trained["result"].blobs["model"]},
            limits=JOB_LIMITS["score"],
        )
    )
    assert result.ok, result.error
    scores = result.tables["scores"]
    assert scores.num_rows == 50
    assert scores.schema.names == ["p_default"]
    assert all(0.0 <= p <= 1.0 for p in scores.column("p_default").to_pylist())


def test_custom_code_is_importable_as_user_code_and_sees_its_inputs(runner):
    result = run_code(
        runner,
        """
        import pyarrow.compute as pc
        import user_code

        def attack(inputs, params, blobs):
            t = inputs["rows"]
            return {
                "tables": {"doubled": t.set_column(0, "x", pc.multiply(t["x"], 2))},
                "values": {"same_module": user_code.attack is attack, "echo": params},
            }
        """,
        inputs={"rows": pa.table({"x": [1, 2, 3]})},
        params={"nested": {"a": [1, 2.5, None, "s"]}},
    )
    assert result.ok, result.error
    assert result.tables["doubled"].column("x").to_pylist() == [2, 4, 6]
    assert result.values["same_module"] is True
    assert result.values["echo"] == {"nested": {"a": [1, 2.5, None, "s"]}}


def test_blobs_reach_the_job(runner):
    result = runner.run(
        JailJob(
            entry="user_code:attack",
            code="def attack(inputs, params, blobs):\n    return {'values': {'b': blobs['b'].hex()}}",
            blobs={"b": b"\x00\x01raw"},
            limits=TEST_LIMITS,
        )
    )
    assert result.ok, result.error
    assert result.values["b"] == b"\x00\x01raw".hex()


def test_an_exception_inside_is_reported_with_type_and_message(runner):
    result = run_code(runner, "def attack(inputs, params, blobs):\n    raise KeyError('col')\n")
    assert result.status == "error"
    assert result.error == "KeyError: 'col'"
    assert "Traceback" in result.stderr


def test_warm_pool_serves_repeated_calls_and_replaces_a_crashed_jail(runner, trained):
    with WarmPool(runner.config, "toymodels.entry:load_scorer", trained["result"].blobs,
                  size=2, limits=JOB_LIMITS["score"]) as pool:
        one = applicants(1)
        thousand = applicants(1000, seed=2)
        for _ in range(10):
            result = pool.call({"applicants": one}, {})
            assert result.ok, result.error
            assert result.tables["scores"].num_rows == 1
        big = pool.call({"applicants": thousand}, {})
        assert big.ok, big.error
        assert big.tables["scores"].num_rows == 1000
        assert big.values["calls"] > 1  # warm: the same jail served earlier calls
        crashed = pool.call({"applicants": one}, {"crash": True})
        assert crashed.status == "error"
        assert crashed.error == "the jail exited with status 3 and no result"
        for _ in range(6):
            assert pool.call({"applicants": one}, {}).ok
        assert pool.replaced == 1


def test_warm_pool_replaces_a_jail_killed_while_idle_and_serves_threads(runner, trained):
    pool = WarmPool(runner.config, "toymodels.entry:load_scorer", trained["result"].blobs,
                    size=1, limits=JOB_LIMITS["score"])
    try:
        jail = pool.idle.queue[0]
        os.killpg(jail.process.popen.pid, signal.SIGKILL)
        jail.process.wait(None)
        results = []

        def call() -> None:
            results.append(pool.call({"applicants": applicants(3)}, {}))

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.status for r in results] == ["ok"] * 4
        assert pool.replaced == 1
    finally:
        pool.close()
    with pytest.raises(PoolUnavailable):
        pool.call({"applicants": applicants(1)}, {})


def test_warm_pool_caller_mistakes_do_not_cost_a_jail(runner, trained):
    with WarmPool(runner, "toymodels.entry:load_scorer", trained["result"].blobs, size=1) as pool:
        with pytest.raises(InvalidJob):
            pool.call({"applicants": applicants(1)}, {"x": float("nan")})
        with pytest.raises(InvalidJob):
            pool.call({"applicants": [1, 2]}, {})  # type: ignore[dict-item]
        assert pool.call({"applicants": applicants(1)}, {}).ok
        assert pool.replaced == 0


def test_warm_pool_replaces_a_jail_whose_answer_is_over_the_cap(runner, trained):
    limits = JOB_LIMITS["score"].with_changes(output_bytes=4096)
    with WarmPool(runner, "toymodels.entry:load_scorer", trained["result"].blobs, size=1,
                  limits=limits) as pool:
        too_big = pool.call({"applicants": applicants(5000)}, {})
        assert too_big.status == "limit"
        assert too_big.limit == "output"
        assert pool.call({"applicants": applicants(2)}, {}).ok
        assert pool.replaced == 1


def test_warm_pool_refuses_to_start_when_setup_fails(runner):
    with pytest.raises(PoolUnavailable) as caught:
        WarmPool(runner.config, "toymodels.entry:load_scorer", {"model": b"not a pickle"},
                 size=1)
    assert "setup" in str(caught.value)


def test_check_jail_passes_on_this_machine_and_fails_on_a_weaker_jail(runner):
    """The fixture's own check_jail passing says little alone: it must have run a real probe, and
    it must refuse when that probe reports a weaker jail."""
    probes: list[JailResult] = []

    class Watched:
        def __init__(self, report: Callable[[JailResult], JailResult]) -> None:
            self.report = report

        def run(self, job: JailJob) -> JailResult:
            probes.append(runner.run(job))
            return self.report(probes[-1])

    check_jail(Watched(lambda seen: seen))
    (probe,) = probes
    assert probe.ok, probe.error
    # As the jail saw itself: filtered, no privileges, no network, its own pid namespace.
    assert probe.values["seccomp"] == "2"
    assert probe.values["no_new_privs"] == "1"
    assert probe.values["cap_eff"] == "0" * 16
    assert probe.values["inet_socket_refused"] is True
    assert probe.values["pid"] == 1
    # Each way a probe can report a weaker jail is refused, and named.
    weaker = {"seccomp": ("0", "seccomp filter"), "no_new_privs": ("0", "no_new_privs"),
              "cap_eff": ("000001ffffffffff", "capabilities"),
              "inet_socket_refused": (False, "network"), "pid": (4242, "pid namespace"),
              "env": (["SAFEROOM_ADMIN_TOKEN"], "environment"),
              "echo": ("not-the-nonce", "round trip")}
    for name, (value, problem) in weaker.items():
        with pytest.raises(JailUnavailable, match=f"^the jail self-check found: {problem}$"):
            check_jail(Watched(lambda seen, n=name, v=value: replace(
                seen, values={**seen.values, n: v})))


def test_missing_bubblewrap_fails_closed():
    broken = BubblewrapRunner(bwrap="/nonexistent/bwrap")
    with pytest.raises(JailUnavailable) as caught:
        check_jail(broken)
    assert caught.value.code == "jail_unavailable"
    with pytest.raises(JailUnavailable):
        broken.run(JailJob(entry="user_code:f", code="def f(i, p, b):\n    return {}\n"))


def test_a_stub_runner_is_not_a_jail():
    stub = StubRunner({"x:y": lambda inputs, params, blobs: {}})
    with pytest.raises(JailUnavailable):
        check_jail(stub)
