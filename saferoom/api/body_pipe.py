"""Feeds an HTTP request body, chunk by chunk, to a parser running in a worker thread.

The body is never held whole in memory nor spooled to disk (it is plaintext sensitive data).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from saferoom.errors import PayloadTooLarge

T = TypeVar("T")
_END = b""


class _Aborted(Exception):
    pass


class BodyPipe(io.RawIOBase):
    """A blocking `read(n)` over chunks that the event loop pushes into a bounded queue.

    `read(n)` returns exactly n bytes until the end: Arrow takes a short read for the end.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int = 64) -> None:
        super().__init__()
        self._loop = loop
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=depth)
        self._buffer = bytearray()
        self._eof = False
        self.aborted = threading.Event()

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1, /) -> bytes:
        n = -1 if n is None else n
        while not self._eof and (n < 0 or len(self._buffer) < n):
            if self.aborted.is_set():
                raise _Aborted
            chunk = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if chunk is _END or self.aborted.is_set():
                self._eof = True
                if self.aborted.is_set():
                    raise _Aborted
            self._buffer += chunk
        take = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        out = bytes(self._buffer[:take])
        del self._buffer[:take]
        return out

    async def feed(self, chunk: bytes, worker: asyncio.Future[Any]) -> bool:
        """Queue a chunk unless the consuming worker has finished; False if it has."""
        put = asyncio.ensure_future(self._queue.put(chunk))
        await asyncio.wait({put, worker}, return_when=asyncio.FIRST_COMPLETED)
        if put.done():
            return True
        put.cancel()
        return False

    def abort(self) -> None:
        self.aborted.set()
        # A full queue means the reader is busy, not waiting: it sees the flag on its next read.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_END)


async def pump(
    chunks: AsyncIterator[bytes], limit: int, consume: Callable[[BodyPipe], T]
) -> T:
    """Run `consume(pipe)` in a thread while feeding it `chunks`; 413 past `limit` bytes."""
    pipe = BodyPipe(asyncio.get_running_loop())
    worker = asyncio.ensure_future(asyncio.to_thread(consume, pipe))
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge("the upload is larger than this room accepts",
                                      {"limit_bytes": limit})
            if chunk and not await pipe.feed(chunk, worker):
                break  # the parser stopped early (a bad row): its error is the answer
        else:
            await pipe.feed(_END, worker)
        return await worker
    except BaseException:
        pipe.abort()
        with contextlib.suppress(BaseException):  # the first error is the one reported
            await worker
        raise
