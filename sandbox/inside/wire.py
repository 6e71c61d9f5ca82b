"""The framing spoken over the jail's pipes, shared by the service and the in-jail bootstrap.

A frame is MAGIC, a 4-byte header length, a JSON header, then the bodies the header lists in order.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

MAGIC = b"SRJ1"
PREFIX = struct.Struct(">4sI")
MAX_HEADER_BYTES = 64 << 20
CHUNK_BYTES = 1 << 20


def dump_json(value: Any) -> bytes:
    """Strict JSON: no NaN or Infinity, which other JSON parsers reject."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()


def frame_start(header: Mapping[str, Any]) -> bytes:
    """MAGIC, length and the JSON header: what precedes a frame's bodies."""
    body = dump_json(dict(header))
    if len(body) > MAX_HEADER_BYTES:
        raise ValueError("frame header too large")
    return PREFIX.pack(MAGIC, len(body)) + body


def parse_prefix(data: bytes) -> int:
    """The header length announced by a frame prefix, or ValueError if it is not one."""
    magic, length = PREFIX.unpack(data)
    if magic != MAGIC:
        raise ValueError("not a jail frame")
    if length > MAX_HEADER_BYTES:
        raise ValueError("frame header too large")
    return int(length)


def ipc_size(table: pa.Table) -> int:
    """Bytes of `table` as an Arrow IPC stream, counted without writing it anywhere."""
    sink = pa.MockOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return int(sink.size())


def ipc_bytes(table: pa.Table) -> pa.Buffer:
    """`table` as one Arrow IPC stream (uncompressed, so the reader can bound its size)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


class FdWriter:
    """A blocking file-like sink over a pipe fd that writes everything and counts the bytes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.written = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        while view:
            n = os.write(self.fd, view[:CHUNK_BYTES * 16])
            view = view[n:]
            self.written += n
        return size

    def write_all(self, parts: Iterable[Any]) -> None:
        for part in parts:
            self.write(part)

    def flush(self) -> None:
        """Nothing is buffered."""

    def writable(self) -> bool:
        return True

    def write_table(self, table: pa.Table) -> None:
        """Stream `table` as Arrow IPC straight into the pipe, buffer by buffer, without a copy."""
        with pa.ipc.new_stream(self, table.schema) as writer:
            writer.write_table(table)


class FdReader:
    """Reads exact byte counts from a trusted pipe fd (the jail's side of the input pipe)."""

    def __init__(self, fd: int) -> None:
        self.file = io.FileIO(fd, "rb", closefd=False)

    def read_into(self, view: memoryview) -> None:
        while view:
            n = self.file.readinto(view[:CHUNK_BYTES * 16])
            if not n:
                raise EOFError("pipe closed mid-frame")
            view = view[n:]

    def read_exact(self, size: int) -> bytes:
        buffer = bytearray(size)
        self.read_into(memoryview(buffer))
        return bytes(buffer)

    def read_frame_header(self) -> dict[str, Any] | None:
        """The next frame's header, or None at a clean end of stream."""
        first = self.file.read(1)
        if not first:
            return None
        prefix = first + self.read_exact(PREFIX.size - 1)
        header = json.loads(self.read_exact(parse_prefix(prefix)))
        if not isinstance(header, dict):
            raise ValueError("frame header is not an object")
        return header

    def read_table(self, size: int) -> pa.Table:
        """One IPC stream of `size` bytes into Arrow-aligned memory, decoded without a copy."""
        buffer = pa.allocate_buffer(size)
        self.read_into(memoryview(buffer))
        return pa.ipc.open_stream(buffer).read_all()

    def read_parts(
        self, tables: Sequence[Sequence[Any]], blobs: Sequence[Sequence[Any]]
    ) -> tuple[dict[str, pa.Table], dict[str, bytes]]:
        """The bodies announced by a header as [name, length] pairs: tables first, then blobs."""
        read_tables = {str(name): self.read_table(int(size)) for name, size in tables}
        read_blobs = {str(name): self.read_exact(int(size)) for name, size in blobs}
        return read_tables, read_blobs


def refuse_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def load_json(data: bytes) -> Any:
    """Strict JSON back: NaN/Infinity refused, nesting bounded by the recursion limit."""
    return json.loads(data, parse_constant=refuse_constant)
