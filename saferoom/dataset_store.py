"""Dataset contents at rest: each version a list of sealed segments of Arrow IPC batches.

A data key per dataset, wrapped by the master key; key id, dataset id and version are the AAD.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa

from saferoom.crypto import MasterKey, key_id, new_key
from saferoom.dataset_spec import DatasetCreate
from saferoom.sealed_file import SealedWriter, read_sealed
from saferoom.state import DatasetRecord, Segment, StateStore

IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
# Told (dataset id, new version) after each commit; must return quickly (e.g. wake a worker).
CommitListener = Callable[[str, int], None]
log = logging.getLogger(__name__)


def wrap_context(dataset_id: str) -> str:
    return f"dataset-key|{dataset_id}"


def segment_context(data_key_id: str, dataset_id: str, version: int) -> str:
    return f"{data_key_id}|{dataset_id}|v{version}"


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema, options=IPC_OPTIONS) as writer:
        writer.write_batch(batch)
    data: bytes = sink.getvalue().to_pybytes()
    return data


class DatasetStore:
    """Writes new versions atomically and reads the current one back into memory only."""

    def __init__(self, root: Path, state: StateStore, master: MasterKey) -> None:
        self._root = root
        self._state = state
        self._master = master
        self._upload_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._listeners: list[CommitListener] = []
        root.mkdir(parents=True, exist_ok=True)

    def on_commit(self, listener: CommitListener) -> Callable[[], None]:
        """Call `listener` after every committed version; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def new_data_key(self, dataset_id: str) -> tuple[bytes, str]:
        """A fresh data key, returned wrapped, with its public id."""
        key = new_key()
        return self._master.wrap(key, wrap_context(dataset_id)), key_id(key)

    def _data_key(self, d: DatasetRecord) -> bytes:
        return self._master.unwrap(d.data_key, wrap_context(d.id))

    def upload_lock(self, dataset_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._upload_locks.setdefault(dataset_id, threading.Lock())

    def write_version(
        self, d: DatasetRecord, batches: Iterable[pa.RecordBatch], *, append: bool
    ) -> tuple[int, int]:
        """Seal `batches` as the next version; on any error nothing changes. -> (rows, version)."""
        version = d.version + 1
        directory = self._root / d.id
        directory.mkdir(exist_ok=True)
        name = f"seg-v{version}-{secrets.token_hex(4)}.sealed"
        writer = SealedWriter(
            directory / name, self._data_key(d), segment_context(d.data_key_id, d.id, version)
        )
        rows = 0
        try:
            for batch in batches:
                if batch.num_rows:
                    writer.write(_ipc(batch))
                    rows += batch.num_rows
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        kept = self._state.segments(d.id, d.version) if append else []
        try:
            self._state.commit_version(d.id, d.version, [*kept, Segment(name, version, rows)])
        except BaseException:
            (directory / name).unlink(missing_ok=True)
            raise
        self._collect_garbage(d.id, {s.file for s in kept} | {name})
        for listener in list(self._listeners):
            try:
                listener(d.id, version)
            except Exception as exc:  # the version is committed: a listener cannot undo it
                log.error("commit listener failed with %s", type(exc).__name__)
        return sum(s.rows for s in kept) + rows, version

    def _collect_garbage(self, dataset_id: str, live: set[str]) -> None:
        for path in (self._root / dataset_id).glob("seg-*.sealed"):
            if path.name not in live:
                path.unlink(missing_ok=True)

    def read_current(self, dataset_id: str) -> tuple[DatasetRecord, pa.Table]:
        """The current version, even while uploads commit: a replaced segment means re-read."""
        for _ in range(5):
            d = self._state.dataset(dataset_id)
            if d is None:
                raise KeyError(dataset_id)
            try:
                return d, self.read(d)
            except FileNotFoundError:
                continue  # a new version was committed and the old segment collected
        raise RuntimeError("the dataset kept changing while it was read")

    def read(self, d: DatasetRecord) -> pa.Table:
        """Decrypt version `d.version` into memory (plaintext never touches disk)."""
        spec = DatasetCreate.model_validate(d.spec)
        key = self._data_key(d)
        batches: list[pa.RecordBatch] = []
        segments = self._state.segments(d.id, d.version)
        if d.rows and not segments:
            raise FileNotFoundError("the version was replaced")  # manifest already dropped
        for seg in segments:
            context = segment_context(d.data_key_id, d.id, seg.written_version)
            for chunk in read_sealed(self._root / d.id / seg.file, key, context):
                if chunk:
                    batches.extend(pa.ipc.open_stream(chunk).read_all().to_batches())
        return pa.Table.from_batches(batches, schema=spec.arrow_schema())
