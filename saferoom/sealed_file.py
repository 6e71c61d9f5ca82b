"""A file of AES-GCM sealed chunks, each bound to its position and to whether it is the last.

Reordering, dropping, duplicating or truncating chunks fails authentication like any bit flip.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from saferoom.crypto import seal, unseal
from saferoom.errors import TamperedData

MAGIC = b"SRSEAL1\n"
_HEAD = struct.Struct("<IB")  # chunk length, last-chunk flag (authenticated via the AAD)


def _aad(context: str, index: int, last: bool) -> bytes:
    return f"saferoom-chunk/v1|{context}|{index}|{'last' if last else 'more'}".encode()


class SealedWriter:
    """Writes chunks to `path` sealed under `key`; `context` names key id, object and version.

    The file appears under its final name only after `commit()` (fsync + rename), so a failed
    write never replaces anything; the temporary file holds ciphertext only.
    """

    def __init__(self, path: Path, key: bytes, context: str) -> None:
        self._path = path
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(self):x}.tmp")
        self._key = key
        self._context = context
        self._pending: bytes | None = None
        self._index = 0
        self._file: BinaryIO = open(self._tmp, "wb")  # noqa: SIM115 (closed in commit/abort)
        self._file.write(MAGIC)

    def write(self, chunk: bytes) -> None:
        # Hold one chunk back: only at commit do we know which chunk is the last.
        if self._pending is not None:
            self._emit(self._pending, last=False)
        self._pending = chunk

    def commit(self) -> Path:
        self._emit(self._pending if self._pending is not None else b"", last=True)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self._path)
        return self._path

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    def _emit(self, chunk: bytes, *, last: bool) -> None:
        blob = seal(self._key, chunk, _aad(self._context, self._index, last))
        self._file.write(_HEAD.pack(len(blob), int(last)))
        self._file.write(blob)
        self._index += 1


def read_sealed(path: Path, key: bytes, context: str) -> Iterator[bytes]:
    """Yield the plaintext chunks in order; raise `TamperedData` on any change or truncation."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise TamperedData("not a sealed file")
        index = 0
        while True:
            head = f.read(_HEAD.size)
            if len(head) < _HEAD.size:
                raise TamperedData("sealed file is truncated")
            length, last = _HEAD.unpack(head)
            blob = f.read(length)
            if len(blob) != length:
                raise TamperedData("sealed file is truncated")
            yield unseal(key, blob, _aad(context, index, bool(last)))
            if last:
                if f.read(1):
                    raise TamperedData("data after the last chunk")
                return
            index += 1
