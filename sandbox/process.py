"""One running jail seen from the service: its bwrap process, its pipes, its capped logs.

Killing it kills the whole tree: bwrap's process group, then the pid namespace with its init.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.command import jail_command
from sandbox.config import JailConfig
from sandbox.errors import JailUnavailable
from sandbox.limits import JailLimits
from sandbox.seccomp import jail_filter

F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20
SIGNAL_EXIT_BASE = 128  # bubblewrap reports a child killed by signal N as exit status 128 + N
LAUNCHER_ENV = {"PATH": "/usr/bin:/bin"}  # bwrap and setpriv see nothing of the service's env


class CappedLog:
    """Drains the jail's stdout or stderr into memory; past `cap` bytes it calls `overflow`."""

    def __init__(self, fd: int, cap: int, overflow: Callable[[], None]) -> None:
        self.fd = fd
        self.cap = cap
        self.overflow = overflow
        self.lock = threading.Lock()
        self.chunks: list[bytes] = []
        self.size = 0
        self.thread = threading.Thread(target=self.drain, name="jail-log", daemon=True)
        self.thread.start()

    def drain(self) -> None:
        try:
            while chunk := os.read(self.fd, 1 << 16):
                with self.lock:
                    room = self.cap - self.size
                    self.chunks.append(chunk[:room])
                    self.size += min(room, len(chunk))
                if len(chunk) > room:
                    self.overflow()
                    return
        except OSError:
            return
        finally:
            os.close(self.fd)

    def take(self) -> str:
        """What was captured since the last take (best effort while the jail still runs)."""
        with self.lock:
            data, self.chunks, self.size = b"".join(self.chunks), [], 0
        return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class ExitInfo:
    exit_code: int  # negative: killed by that signal
    cpu_seconds: float  # of the whole tree, as reaped (a killed tree may under-report)


def seccomp_pipe(program: bytes) -> int:
    """A pipe holding the compiled filter for bwrap's --seccomp; returns its read end."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, program)  # a few KiB: fits in the pipe buffer at once
    finally:
        os.close(write_end)
    return read_end


class JailProcess:
    """Starts one jail; the service writes frames to `in_fd` and reads them from `out_fd`."""

    def __init__(
        self, config: JailConfig, limits: JailLimits, mode: str, preload: tuple[str, ...] = ()
    ) -> None:
        config.check_tools()
        self.killed_for: str | None = None
        self.exit: ExitInfo | None = None
        self.lock = threading.Lock()
        self.input_open = True
        self.finished = False
        program = jail_filter()  # JailUnavailable here leaves nothing open
        filter_fd = seccomp_pipe(program)
        jail_in, self.in_fd = os.pipe()
        self.out_fd, jail_out = os.pipe()
        jail_side = (filter_fd, jail_in, jail_out)
        try:
            for fd in (self.in_fd, self.out_fd):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)  # fewer wakeups for big tables
            argv = jail_command(
                config, limits, seccomp_fd=filter_fd, in_fd=jail_in, out_fd=jail_out, mode=mode,
                preload=preload,
            )
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=jail_side,  # and nothing else crosses
                close_fds=True,
                env=LAUNCHER_ENV,
                start_new_session=True,  # its own process group, so one killpg reaches all of it
            )
        except BaseException as exc:
            os.close(self.in_fd)
            os.close(self.out_fd)
            if isinstance(exc, OSError):
                raise JailUnavailable("bubblewrap could not be started; jails refused") from exc
            raise
        finally:
            for fd in jail_side:
                os.close(fd)
        self.pidfd = os.pidfd_open(self.popen.pid)
        assert self.popen.stdout is not None
        assert self.popen.stderr is not None
        self.stdout = CappedLog(os.dup(self.popen.stdout.fileno()), limits.log_bytes, self.log_full)
        self.stderr = CappedLog(os.dup(self.popen.stderr.fileno()), limits.log_bytes, self.log_full)
        self.popen.stdout.close()
        self.popen.stderr.close()

    def log_full(self) -> None:
        self.kill("log")

    def kill(self, reason: str) -> None:
        """SIGKILL the jail's process group; the first reason given is the one reported."""
        with self.lock:
            if self.exit is not None:
                return
            if self.killed_for is None:
                self.killed_for = reason
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def close_input(self) -> None:
        """Close the service's end of the input pipe once (the jail then reads EOF)."""
        with self.lock:
            if self.input_open:
                self.input_open = False
                os.close(self.in_fd)

    def exited(self) -> bool:
        return self.exit is not None or bool(select.select([self.pidfd], [], [], 0)[0])

    def wait(self, timeout: float | None) -> ExitInfo | None:
        """Reap the jail within `timeout` seconds (None: forever); None if it is still running."""
        waiting = self.exit is None and timeout is not None
        if waiting and not select.select([self.pidfd], [], [], max(0.0, timeout or 0.0))[0]:
            return None
        with self.lock:
            if self.exit is None:
                _, status, usage = os.wait4(self.popen.pid, 0)
                code = os.waitstatus_to_exitcode(status)
                self.popen.returncode = code
                if code > SIGNAL_EXIT_BASE:
                    code = SIGNAL_EXIT_BASE - code
                self.exit = ExitInfo(
                    exit_code=code,
                    cpu_seconds=usage.ru_utime + usage.ru_stime,
                )
                os.close(self.pidfd)
            return self.exit

    def finish(self) -> ExitInfo:
        """Kill if still running, reap, and close the service's ends of the pipes.

        Call it after the input writer has returned: it closes the fd that writer uses.
        """
        info = self.wait(0)
        if info is None:
            self.kill("finished")
            info = self.wait(None)
            assert info is not None
        self.close_input()
        with self.lock:
            if not self.finished:
                self.finished = True
                os.close(self.out_fd)
        self.stdout.thread.join(timeout=5)
        self.stderr.thread.join(timeout=5)
        return info
