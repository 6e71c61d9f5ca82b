"""How a jail's run ended, told from what the service saw and what the jail said.

Limits the service enforces (wall, output, log) come first; the jail's own words come next.
"""

from __future__ import annotations

import signal
import time

from sandbox.job import JailResult, Status
from sandbox.outputs import ResultFrame
from sandbox.process import ExitInfo, JailProcess

SERVICE_LIMITS = frozenset({"wall", "output", "log"})
EXIT_GRACE_SECONDS = 5.0


def settle(process: JailProcess, frame: ResultFrame | None, deadline: float) -> ExitInfo:
    """Let the jail exit on its own (within the deadline and a grace), else kill it; reap it."""
    left = deadline - time.monotonic()
    if process.wait(min(EXIT_GRACE_SECONDS, max(0.0, left))) is None:
        late = frame is None and time.monotonic() >= deadline
        process.kill("wall" if late else "lingering")
    return process.finish()


def classify(
    process: JailProcess, frame: ResultFrame | None, rejected: str | None, info: ExitInfo
) -> tuple[Status, str | None, str | None]:
    """(status, limit, error) of a finished exchange."""
    reason = process.killed_for
    if reason in SERVICE_LIMITS:
        return "limit", reason, None
    if frame is not None and frame.ok:
        return "ok", None, None
    if frame is not None:
        return ("limit" if frame.limit else "error"), frame.limit, frame.error
    if rejected is not None:
        return "error", None, f"OutputRejected: {rejected}"
    if reason is not None:
        return "error", None, f"stopped by the service ({reason})"
    code = info.exit_code
    if code == -signal.SIGKILL:
        # RLIMIT_CPU: soft = hard, and the jail's pid 1 never gets SIGXCPU, so a SIGKILL the
        # service did not send is the CPU limit.
        return "limit", "cpu", None
    if code == -signal.SIGXCPU:
        return "limit", "cpu", None
    if code == -signal.SIGXFSZ:
        return "limit", "file_size", None
    if code == -signal.SIGSYS:
        return "error", None, "killed by the seccomp filter (SIGSYS)"
    if code < 0:
        return "error", None, f"killed by {signal.Signals(-code).name}"
    return "error", None, f"the jail exited with status {code} and no result"


def outcome(
    frame: ResultFrame | None,
    status: Status,
    limit: str | None,
    error: str | None,
    *,
    process: JailProcess,
    started: float,
    exit_code: int | None,
    cpu_seconds: float,
    peak_rss_bytes: int,
) -> JailResult:
    """The `JailResult` of a run: outputs only when it succeeded, logs always (capped)."""
    ok = status == "ok" and frame is not None
    return JailResult(
        status=status,
        limit=limit,
        error=error,
        tables=frame.tables if ok and frame else {},
        values=frame.values if ok and frame else {},
        blobs=frame.blobs if ok and frame else {},
        exit_code=exit_code,
        wall_seconds=time.monotonic() - started,
        cpu_seconds=cpu_seconds,
        peak_rss_bytes=peak_rss_bytes,
        stdout=process.stdout.take(),
        stderr=process.stderr.take(),
    )
