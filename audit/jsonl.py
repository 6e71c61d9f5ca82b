"""Append-only line files: durable appends that roll back on failure, and line scanning.

A write is acknowledged only after fsync; a crash mid-write leaves at most one torn last line.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a file: where it starts, its bytes without the newline, and whether it
    ended with one (an unterminated last line is a write that never finished)."""

    offset: int
    data: bytes
    terminated: bool


def iter_lines(path: Path) -> Iterator[Line]:
    """Every line of `path` in order (none if the file is missing); reads, never writes."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        offset = 0
        for raw in handle:
            terminated = raw.endswith(b"\n")
            yield Line(offset, raw[:-1] if terminated else raw, terminated)
            offset += len(raw)


def fsync_directory(directory: Path) -> None:
    """Make a newly created file's directory entry durable too."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AppendFile:
    """One file opened for appending, with random-access reads by offset.

    With `exclusive`, an advisory lock keeps a second process from interleaving appends;
    the kernel drops it when the process dies, so a crash never leaves the log locked.
    Raises OSError (BlockingIOError when another process holds the lock).
    """

    def __init__(self, path: Path, *, exclusive: bool = False) -> None:
        created = not path.exists()
        # 0o600: the log names actors and enterprises, so only the service may read it.
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if exclusive:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if created:
                fsync_directory(path.parent)
            self._end = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._fd)
            raise
        self.path = path
        self.closed = False

    @property
    def end(self) -> int:
        """Length of the acknowledged content."""
        return self._end

    def truncate(self, length: int) -> None:
        """Cut the file back to `length` durably (drops a torn tail found on open)."""
        os.ftruncate(self._fd, length)
        os.fsync(self._fd)
        self._end = length

    def append(self, data: bytes) -> int:
        """Write `data` at the end and fsync before returning its start offset.

        On any OSError the file is cut back to its previous length so that no half-written
        batch sits in front of the next append, and the error is re-raised.
        """
        self._check_open()
        start = self._end
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
        except OSError:
            self._roll_back(start)
            raise
        self._end = start + len(data)
        return start

    def _roll_back(self, length: int) -> None:
        try:
            os.ftruncate(self._fd, length)
        except OSError:
            # The file now ends in bytes we never acknowledged. Reopening treats an
            # unterminated tail as torn; refuse further appends until then.
            self.close()

    def read(self, offset: int, length: int) -> bytes:
        """Bytes at [offset, offset + length); pread, so safe beside concurrent appends."""
        self._check_open()
        return os.pread(self._fd, length, offset)

    def _check_open(self) -> None:
        # A closed descriptor's number can be reused by another file: never touch it again.
        if self.closed:
            raise OSError("the file is closed")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)
