"""Jails started before they are needed, so a one-shot job skips bwrap's start and slow imports.

A spare serves exactly one job, like any fresh jail: only the waiting was done early.
"""

from __future__ import annotations

import logging
import queue
import threading

from sandbox.config import JailConfig
from sandbox.limits import JailLimits
from sandbox.process import JailProcess

log = logging.getLogger("sandbox.spares")
STARTING_S = 10.0  # how long a job waits for a spare being started before it starts cold


class SpareJails:
    """Started, idle once-mode jails per registered `JailLimits` (`count` of them), each with
    modules preloaded.

    `take(limits)` hands a spare out (None: start cold); `replenish_all()`, called by the
    runner once no job has run for a second, orders replacements, so their start and imports
    (~1.5 s of CPU) do not compete with a job (next to one they made it 1.5-3x slower on 2
    cores, even at SCHED_IDLE). Two kept ready serve a job sent right after another; a third in
    a row starts cold. Jails are started on the keeper's own thread, which lives until
    `close()`: bwrap's --die-with-parent follows the thread that started it.
    """

    def __init__(self, config: JailConfig) -> None:
        self._config = config
        self._kept: dict[JailLimits, tuple[tuple[str, ...], int]] = {}  # preload, count
        self._ready: dict[JailLimits, list[JailProcess]] = {}
        self._pending: dict[JailLimits, int] = {}  # being started
        self._wanted: queue.SimpleQueue[JailLimits | None] = queue.SimpleQueue()
        self._changed = threading.Condition()  # guards all of this state; notified on changes
        self._closed = False
        self._keeper: threading.Thread | None = None

    def keep(self, limits: JailLimits, preload: tuple[str, ...], count: int = 1) -> None:
        """From now on keep `count` spares for jobs with exactly these limits."""
        with self._changed:
            if self._closed:
                return
            self._kept[limits] = (tuple(preload), max(1, count))
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep, name="spare-jails", daemon=True)
                self._keeper.start()
        self.replenish(limits)

    def ready(self, limits: JailLimits) -> int:
        """How many spares for these limits are started and waiting."""
        with self._changed:
            return len(self._ready.get(limits, ()))

    def take(self, limits: JailLimits) -> JailProcess | None:
        """A spare for these limits if there is one (waiting for one being started: it has a
        head start on a cold jail); None if there is none, or it died while it waited."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._closed or self._ready.get(limits)
                or not self._pending.get(limits), timeout=STARTING_S
            )
            if self._closed:
                return None
            waiting = self._ready.get(limits)
            process = waiting.pop(0) if waiting else None
        if process is not None and process.exited():
            process.finish()  # killed from outside while it waited: start cold instead
            return None
        return process

    def replenish(self, limits: JailLimits) -> None:
        """Start spares for these limits until `count` are ready or starting."""
        with self._changed:
            if self._closed or limits not in self._kept:
                return
            _, count = self._kept[limits]
            missing = count - len(self._ready.get(limits, ())) - self._pending.get(limits, 0)
            if missing <= 0:
                return
            self._pending[limits] = self._pending.get(limits, 0) + missing
        for _ in range(missing):
            self._wanted.put(limits)

    def replenish_all(self) -> None:
        """`replenish` every kept kind."""
        with self._changed:
            kept = list(self._kept)
        for limits in kept:
            self.replenish(limits)

    def _keep(self) -> None:
        while (limits := self._wanted.get()) is not None:
            if self._is_closed():
                break
            try:
                process: JailProcess | None = JailProcess(
                    self._config, limits, "once", self._kept[limits][0]
                )
            except Exception as exc:  # any failure: no spare this time, never a dead keeper
                # The next job starts cold (and reports the failure); its end asks again.
                log.warning("a spare jail could not start (%s)", type(exc).__name__)
                process = None
            with self._changed:
                self._pending[limits] -= 1
                late = self._closed
                if process is not None and not late:
                    self._ready.setdefault(limits, []).append(process)
                self._changed.notify_all()
            if process is not None and late:  # closed while it started
                process.kill("closed")
                process.finish()

    def _is_closed(self) -> bool:
        # Under the lock, like every other access to the state.
        with self._changed:
            return self._closed

    def close(self) -> None:
        """Kill the idle spares and stop the keeper; idempotent."""
        with self._changed:
            self._closed = True
            idle = [p for waiting in self._ready.values() for p in waiting]
            self._ready = {}
            keeper = self._keeper
            self._changed.notify_all()
        self._wanted.put(None)
        for process in idle:
            process.kill("closed")
            process.finish()
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(timeout=10)
