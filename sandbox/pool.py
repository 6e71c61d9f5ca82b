"""Warm jails for scoring: each sets up once (e.g. loads a model), then answers batch after batch.

A jail that dies, hits a limit or breaks the protocol is killed and replaced by a fresh one.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from sandbox.channel import ResultReader
from sandbox.config import JailConfig
from sandbox.errors import InvalidJob, PoolUnavailable
from sandbox.job import JailResult, Status, check_entry, check_inputs, check_names
from sandbox.limits import JOB_LIMITS, JailLimits
from sandbox.outcome import classify, outcome, send_and_read, settle
from sandbox.process import JailProcess
from sandbox.request import Request
from sandbox.runner import BubblewrapRunner

FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0


class WarmJail:
    """One jail in serve mode. Not thread-safe: the pool hands it to one caller at a time."""

    def __init__(self, config: JailConfig, limits: JailLimits, setup: Request) -> None:
        self.limits = limits
        self.process = JailProcess(config, limits, mode="serve")
        self.cpu_reported = 0.0
        try:
            self.reader = ResultReader(self.process.out_fd, limits.output_bytes, 0.0)
            self.setup = self.exchange(setup)
        except BaseException:
            self.close()
            raise

    @property
    def alive(self) -> bool:
        return not self.process.exited()

    def exchange(self, request: Request) -> JailResult:
        """Send one frame and read one answer; a broken jail is killed and reaped."""
        started = time.monotonic()
        deadline = started + self.limits.wall_seconds
        self.reader.reset(self.limits.output_bytes, deadline)
        # On an exception the jail is killed and reaped; the caller retires it.
        writer, frame, rejected = send_and_read(self.process, request, self.reader)
        if frame is not None and frame.limit is None and self.process.killed_for is None:
            writer.join()
            cpu = max(0.0, frame.cpu_seconds - self.cpu_reported)
            self.cpu_reported = frame.cpu_seconds
            status: Status = "ok" if frame.ok else "error"
            return outcome(frame, status, None, frame.error, process=self.process,
                           started=started, exit_code=None, cpu_seconds=cpu)
        if frame is not None:
            self.process.kill("retired")  # it reported a limit: do not trust its state further
        info = settle(self.process, frame, deadline)
        writer.join()
        status, limit, error = classify(self.process, frame, rejected, info)
        return outcome(frame, status, limit, error, process=self.process, started=started,
                       exit_code=info.exit_code, cpu_seconds=info.cpu_seconds)

    def close(self) -> None:
        self.process.kill("closed")
        self.process.finish()


class WarmPool:
    """`size` jails kept set up with `entry(blobs)`; `call` feeds a batch to an idle one.

    `entry` names a setup function, "module:function", called once per jail with the blobs (e.g.
    to unpickle a model, inside the jail); it returns the callable `(inputs, params) -> dict`
    that answers each call, with the same result dict as a one-shot job. A warm jail keeps state
    across calls, so keep one pool per model and purpose. `limits.cpu_seconds` covers a jail's
    whole life (it is then replaced); `wall_seconds` and `output_bytes` apply to each call.
    Jails are started on the pool's own thread, which lives until `close()`: bwrap's
    --die-with-parent follows the thread that started it.
    """

    def __init__(
        self,
        runner_config: JailConfig | BubblewrapRunner,
        entry: str,
        blobs: Mapping[str, bytes],
        size: int,
        *,
        code: str | None = None,
        limits: JailLimits = JOB_LIMITS["score"],
    ) -> None:
        check_entry(entry)
        check_names("blob", blobs)
        if not isinstance(size, int) or size < 1:
            raise InvalidJob("a warm pool needs at least one jail")
        if isinstance(runner_config, BubblewrapRunner):
            runner_config = runner_config.config
        self.config = runner_config
        self.limits = limits
        self.size = size
        self.setup_request = Request.build(
            {"entry": entry, "code": code}, {}, {name: bytes(b) for name, b in blobs.items()}
        )
        self.replaced = 0
        self.setup_failure: JailResult | None = None
        self.idle: queue.Queue[WarmJail] = queue.Queue()
        self.wanted: queue.Queue[bool] = queue.Queue()
        self.jails: set[WarmJail] = set()
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.started = threading.Semaphore(0)
        for _ in range(size):
            self.wanted.put(True)
        self.keeper = threading.Thread(target=self.keep, name="warm-pool-keeper", daemon=True)
        self.keeper.start()
        for _ in range(size):
            self.started.acquire()
            if self.setup_failed():
                self.close()
                raise PoolUnavailable("a warm jail failed its setup; see setup_failure")

    def setup_failed(self) -> bool:
        """Whether a jail failed to start or set up (written by the keeper thread)."""
        return self.setup_failure is not None

    def spawn(self) -> WarmJail | None:
        try:
            jail = WarmJail(self.config, self.limits, self.setup_request)
        except Exception as exc:  # any failure to start is a failed setup, never a dead keeper
            self.setup_failure = JailResult(status="error", error=f"{type(exc).__name__}: {exc}")
            return None
        if not jail.setup.ok:
            self.setup_failure = jail.setup
            jail.close()
            return None
        return jail

    def keep(self) -> None:
        """The pool's own thread: starts jails whenever one is wanted, until the pool closes."""
        delay = FIRST_RESTART_DELAY
        startup = self.size
        try:
            while self.wanted.get() and not self.closed.is_set():
                jail = self.spawn()
                if jail is not None:
                    delay = FIRST_RESTART_DELAY
                    with self.lock:
                        if self.closed.is_set():
                            jail.close()
                            break
                        self.jails.add(jail)
                    self.idle.put(jail)
                elif startup == 0:
                    self.closed.wait(delay)  # keep trying, without spinning if jails cannot start
                    delay = min(delay * 2, MAX_RESTART_DELAY)
                    self.wanted.put(True)
                if startup:
                    startup -= 1
                    self.started.release()
        finally:
            for _ in range(startup):  # never leave the constructor waiting
                self.started.release()

    def retire(self, jail: WarmJail) -> None:
        with self.lock:
            self.jails.discard(jail)
        jail.close()
        if not self.closed.is_set():
            self.replaced += 1
            self.wanted.put(True)

    def take(self) -> WarmJail:
        deadline = time.monotonic() + self.limits.wall_seconds
        while True:
            if self.closed.is_set():
                raise PoolUnavailable("the warm pool is closed")
            try:
                jail = self.idle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise PoolUnavailable("no warm jail became free in time") from None
            if jail.alive:
                return jail
            self.retire(jail)  # died while idle: replace it, try the next one

    def call(self, inputs: Mapping[str, pa.Table], params: Mapping[str, Any]) -> JailResult:
        """Score one batch in an idle warm jail; no cold start."""
        check_inputs(inputs)
        request = Request.build({"params": dict(params)}, inputs, {})  # InvalidJob before a jail
        jail = self.take()
        try:
            result = jail.exchange(request)
        except BaseException:
            self.retire(jail)
            raise
        if result.limit is None and jail.alive and not self.closed.is_set():
            self.idle.put(jail)
        else:
            self.retire(jail)
        return result

    def close(self) -> None:
        """Kill every jail and stop the keeper; idempotent."""
        self.closed.set()
        self.wanted.put(False)
        with self.lock:
            jails, self.jails = list(self.jails), set()
        for jail in jails:
            with contextlib.suppress(OSError):
                jail.close()
        if threading.current_thread() is not self.keeper:
            self.keeper.join(timeout=10)

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
