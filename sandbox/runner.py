"""The one gate untrusted code goes through: `Runner` and its bubblewrap implementation.

`check_jail` is the self-check the service runs at start; when it fails, no job runs (fail closed).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from sandbox.channel import ResultReader
from sandbox.command import JAIL_ENV, JAIL_PACKAGE
from sandbox.config import JailConfig, PythonRuntime
from sandbox.errors import JailUnavailable, SandboxError
from sandbox.job import JailJob, JailResult, check_entry
from sandbox.limits import JailLimits
from sandbox.outcome import classify, outcome, send_and_read, settle
from sandbox.process import JailProcess
from sandbox.request import Request
from sandbox.spares import SpareJails

PROBE_ENTRY = f"{JAIL_PACKAGE}.probe:look_around"
PROBE_LIMITS = JailLimits(
    cpu_seconds=60,
    memory_bytes=2 << 30,
    max_processes=32,
    file_size_bytes=1 << 20,
    open_files=64,
    output_bytes=1 << 20,
    wall_seconds=60,
    tmpfs_bytes=1 << 20,
)
JAIL_ENV_NAMES = {*JAIL_ENV, "PWD"}  # bwrap sets PWD from --chdir


# How long no job must have run before spares are replaced.
REPLENISH_WHEN_IDLE_S = 1.0


class Runner(Protocol):
    """Runs one job in a jail. The seam a cluster scheduler can implement later."""

    def run(self, job: JailJob) -> JailResult: ...


class BubblewrapRunner:
    """Runs each job in a fresh bubblewrap jail (sandbox/command.py lists every flag)."""

    def __init__(
        self,
        runtime: PythonRuntime | None = None,
        import_roots: Sequence[Path] = (),
        *,
        bwrap: Path | str = "/usr/bin/bwrap",
        jail_uid: int = 65534,
        jail_gid: int = 65534,
    ) -> None:
        self.config = JailConfig(
            runtime=runtime or PythonRuntime.current(),
            import_roots=tuple(Path(p) for p in import_roots),
            bwrap=Path(bwrap),
            jail_uid=jail_uid,
            jail_gid=jail_gid,
        )
        self.spares = SpareJails(self.config)
        self._lock = threading.Lock()
        self._running = 0  # jobs in jails now: spares are replaced only when none are
        self._ended = 0.0  # when the last one ended

    def keep_spare(self, limits: JailLimits, preload: Sequence[str] = (), count: int = 1) -> None:
        """Keep `count` jails started ahead for jobs with these limits, `preload` imported.

        Each spare still serves one job only; it just saves that job the wait (bwrap's start,
        and the preloaded imports: ~1.1 s for scikit-learn). Call `close()` to stop them.
        """
        for name in preload:
            check_entry(f"{name}:_")
        self.spares.keep(limits, tuple(preload), count)

    def close(self) -> None:
        self.spares.close()

    def run(self, job: JailJob) -> JailResult:
        limits = job.limits
        request = Request.build(  # InvalidJob here, before any jail starts
            {"entry": job.entry, "code": job.code, "params": dict(job.params)},
            job.inputs, job.blobs,
        )
        started = time.monotonic()
        with self._lock:
            self._running += 1
        try:
            process = self.spares.take(limits) or JailProcess(self.config, limits, mode="once")
            return self._run(process, request, limits, started)
        finally:
            with self._lock:
                self._running -= 1
                self._ended = time.monotonic()
            # Only once no job has run for a moment: a spare's start and imports (~1.5 s of
            # CPU) next to a running job made it 1.5-3x slower on 2 cores, even at SCHED_IDLE
            # (OpenMP's threads wait on each other), and a job often follows another at once.
            timer = threading.Timer(REPLENISH_WHEN_IDLE_S, self._replenish_if_idle)
            timer.daemon = True
            timer.start()

    def _replenish_if_idle(self) -> None:
        with self._lock:
            idle = (self._running == 0
                    and time.monotonic() - self._ended >= REPLENISH_WHEN_IDLE_S * 0.99)
        if idle:
            self.spares.replenish_all()

    @staticmethod
    def _run(process: JailProcess, request: Request, limits: JailLimits, started: float
             ) -> JailResult:
        deadline = started + limits.wall_seconds
        reader = ResultReader(process.out_fd, limits.output_bytes, deadline)
        try:
            writer, frame, rejected = send_and_read(process, request, reader)
        except BaseException:
            process.finish()  # killed and reaped already: close the pipes too
            raise
        info = settle(process, frame, deadline)
        writer.join()
        status, limit, error = classify(process, frame, rejected, info)
        return outcome(
            frame, status, limit, error, process=process, started=started,
            exit_code=info.exit_code,
            cpu_seconds=max(info.cpu_seconds, frame.cpu_seconds if frame else 0.0),
        )


def check_jail(runner: Runner) -> None:
    """Run a probe in a jail and compare what it saw with a sealed jail; JailUnavailable if not.

    The service calls this at start and refuses every job when it fails: never run unjailed.
    """
    nonce = secrets.token_hex(8)
    try:
        result = runner.run(
            JailJob(
                entry=PROBE_ENTRY,
                inputs={"probe": pa.table({"n": [1, 2, 3]})},
                params={"echo": nonce},
                limits=PROBE_LIMITS,
            )
        )
    except SandboxError as exc:
        raise JailUnavailable(f"the jail self-check could not run: {exc.code}") from exc
    except OSError as exc:
        raise JailUnavailable("the jail self-check could not run") from exc
    if not result.ok:
        raise JailUnavailable(f"the jail self-check failed ({result.status}, {result.limit})")
    seen = result.values
    problems = [
        name
        for name, fine in [
            ("seccomp filter", seen.get("seccomp") == "2"),
            ("no_new_privs", seen.get("no_new_privs") == "1"),
            ("capabilities", seen.get("cap_eff") == "0" * 16),
            ("network", seen.get("inet_socket_refused") is True),
            ("pid namespace", seen.get("pid") == 1),  # the bootstrap is its own namespace's init
            ("environment", set(seen.get("env") or ["?"]) <= JAIL_ENV_NAMES),
            ("round trip", seen.get("echo") == nonce and seen.get("tables") == ["probe"]),
        ]
        if not fine
    ]
    if problems:
        raise JailUnavailable("the jail self-check found: " + ", ".join(problems))
