"""Reading a jail's result pipe under two limits at once: a byte cap and a wall-clock deadline.

Whatever the jail sends is untrusted: nothing is read past the cap, nothing waits past the deadline.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

import pyarrow as pa

from sandbox.inside import wire


class LimitHit(Exception):  # a signal between modules, never shown to callers
    """A limit the service enforces from outside fired ("output" or "wall")."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class JailEnded(Exception):  # a signal between modules, never shown to callers
    """The pipe closed before a whole frame arrived."""


class ResultReader:
    """Exact reads from the jail's output pipe, counted against `cap`, bounded by `deadline`."""

    def __init__(self, fd: int, cap: int, deadline: float) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.remaining = cap
        self.deadline = deadline
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def reset(self, cap: int, deadline: float) -> None:
        """A new budget for the next frame (warm jails answer many)."""
        self.remaining = cap
        self.deadline = deadline

    def wait_readable(self) -> None:
        left = self.deadline - time.monotonic()
        ready = left > 0 and self.poller.poll(max(1, int(left * 1000)))
        if not ready and time.monotonic() >= self.deadline:
            raise LimitHit("wall")

    def read_into(self, view: memoryview) -> None:
        if len(view) > self.remaining:
            raise LimitHit("output")
        while view:
            try:
                n = os.readv(self.fd, [view])
            except BlockingIOError:
                self.wait_readable()
                continue
            if n == 0:
                raise JailEnded
            self.remaining -= n
            view = view[n:]

    def read_bytes(self, size: int) -> bytes:
        buffer = bytearray(size)
        self.read_into(memoryview(buffer))
        return bytes(buffer)

    def read_buffer(self, size: int) -> pa.Buffer:
        """`size` bytes into Arrow-aligned memory, so a table decodes from it without a copy."""
        if size > self.remaining:
            raise LimitHit("output")
        buffer = pa.allocate_buffer(size)
        self.read_into(memoryview(buffer))
        return buffer

    def read_header(self) -> Any:
        """The next frame's JSON header (parsed, not yet checked)."""
        length = wire.parse_prefix(self.read_bytes(wire.PREFIX.size))
        return wire.load_json(self.read_bytes(length))
