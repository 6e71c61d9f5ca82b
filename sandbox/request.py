"""The service's side of a request frame: a JSON header, then Arrow IPC streams and blobs.

Tables are written straight into the pipe buffer by buffer from a thread: no serialized copy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from sandbox.errors import InvalidJob, SandboxError
from sandbox.inside import wire


def part_sizes(tables: Mapping[str, pa.Table], blobs: Mapping[str, bytes]) -> dict[str, Any]:
    """The header fields announcing the bodies, in the order they are sent."""
    return {
        "tables": [[name, wire.ipc_size(table)] for name, table in tables.items()],
        "blobs": [[name, len(blob)] for name, blob in blobs.items()],
    }


def frame_header(fields: Mapping[str, Any]) -> bytes:
    try:
        return wire.frame_start(fields)
    except (TypeError, ValueError) as exc:
        raise InvalidJob("parameters must be JSON (no NaN, no Infinity)") from exc


class RequestWriter:
    """Sends one frame to a jail from its own thread; a jail that stops reading just dies."""

    def __init__(
        self,
        fd: int,
        header: bytes,
        sizes: dict[str, Any],
        tables: Mapping[str, pa.Table],
        blobs: Mapping[str, bytes],
        on_failure: Callable[[], None],
    ) -> None:
        self.writer = wire.FdWriter(fd)
        self.on_failure = on_failure
        self.header = header
        self.sizes = sizes
        self.tables = tables
        self.blobs = blobs
        self.thread = threading.Thread(target=self.send, name="jail-input", daemon=True)

    def start(self) -> RequestWriter:
        self.thread.start()
        return self

    def send(self) -> None:
        try:
            self.writer.write(self.header)
            for (_, size), table in zip(self.sizes["tables"], self.tables.values(), strict=True):
                before = self.writer.written
                self.writer.write_table(table)
                if self.writer.written - before != size:
                    raise SandboxError("an input table's IPC size changed while it was sent")
            for blob in self.blobs.values():
                self.writer.write(blob)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the jail died or stopped reading; its result says why
        except BaseException:  # never raised in this thread: the result reports the kill
            self.on_failure()  # the jail waits for bytes that will never come: stop it now

    def join(self, timeout: float | None = None) -> None:
        if self.thread.ident is not None:  # started
            self.thread.join(timeout)


@dataclass(frozen=True)
class Request:
    """One frame to send: its encoded header, the sizes it announces, and the bodies."""

    header: bytes
    sizes: dict[str, Any]
    tables: Mapping[str, pa.Table]
    blobs: Mapping[str, bytes]

    @classmethod
    def build(
        cls,
        fields: Mapping[str, Any],
        tables: Mapping[str, pa.Table],
        blobs: Mapping[str, bytes],
    ) -> Request:
        sizes = part_sizes(tables, blobs)
        return cls(frame_header({**fields, **sizes}), sizes, tables, blobs)
