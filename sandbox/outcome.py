"""How a jail's run ended, told from what the service saw and what the jail said.

Limits the service enforces (wall, output, log) come first; the jail's own words come next.
"""

from __future__ import annotations

import signal
import time

from sandbox.channel import JailEnded, LimitHit, ResultReader
from sandbox.errors import OutputRejected
from sandbox.job import JailResult, Status
from sandbox.outputs import ResultFrame, read_result
from sandbox.process import ExitInfo, JailProcess
from sandbox.request import Request, RequestWriter

SERVICE_LIMITS = frozenset({"wall", "output", "log"})
EXIT_GRACE_SECONDS = 5.0


def send_and_read(
    process: JailProcess, request: Request, reader: ResultReader
) -> tuple[RequestWriter, ResultFrame | None, str | None]:
    """Send one frame and read one answer: (writer, frame, why the output was rejected).

    A limit or a rejected output kills the jail for the caller to settle; anything else kills
    and reaps it, waits for the writer, and raises.
    """
    writer = RequestWriter(
        process.in_fd, request.header, request.sizes, request.tables, request.blobs,
        lambda: process.kill("input"),
    )
    frame: ResultFrame | None = None
    rejected: str | None = None
    try:
        writer.start()
        frame = read_result(reader)
    except LimitHit as hit:
        process.kill(hit.limit)
    except JailEnded:
        pass  # settle() finds out how it ended
    except OutputRejected as exc:
        rejected = str(exc)
        process.kill("rejected")
    except BaseException:
        process.kill("failed")  # never leave a jail running behind an exception
        process.wait(None)
        writer.join()  # before anyone closes the fd it writes to
        raise
    return writer, frame, rejected


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
        # Only the jail's own figure: wait4's ru_maxrss carries the service's high-water mark
        # across the (v)fork and exec that start bwrap, so it would measure the service.
        peak_rss_bytes=frame.peak_rss_bytes if frame else 0,
        stdout=process.stdout.take(),
        stderr=process.stderr.take(),
    )
