"""The control-plane store: principals, datasets, versions, wrapped keys, in one DuckDB file.

Holds no sensitive value: token hashes, wrapped keys, schemas and counts only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS principals (
    id VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, name VARCHAR NOT NULL, uscc VARCHAR,
    token_id VARCHAR UNIQUE NOT NULL, token_hash BLOB NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    id VARCHAR PRIMARY KEY, name VARCHAR UNIQUE NOT NULL, owner_id VARCHAR NOT NULL,
    owner_role VARCHAR NOT NULL, spec JSON NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    version INTEGER NOT NULL, rows BIGINT NOT NULL, updated_at TIMESTAMPTZ,
    data_key BLOB NOT NULL, data_key_id VARCHAR NOT NULL, policy JSON);
CREATE TABLE IF NOT EXISTS dataset_segments (
    dataset_id VARCHAR NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL,
    file VARCHAR NOT NULL, written_version INTEGER NOT NULL, rows BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, version, position));
"""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PrincipalRecord:
    id: str
    role: str
    name: str
    uscc: str | None
    token_id: str
    token_hash: bytes


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    name: str
    owner_id: str
    owner_role: str
    spec: dict[str, Any]
    version: int
    rows: int
    created_at: datetime
    updated_at: datetime | None
    data_key: bytes
    data_key_id: str
    policy: dict[str, Any] | None


@dataclass(frozen=True)
class Segment:
    file: str
    written_version: int
    rows: int


_DATASET_COLUMNS = (
    "id, name, owner_id, owner_role, spec, version, rows, created_at, updated_at, "
    "data_key, data_key_id, policy"
)
_SELECT_DATASETS = f"SELECT {_DATASET_COLUMNS} FROM datasets"  # noqa: S608 (constants only)


def _dataset(row: tuple[Any, ...]) -> DatasetRecord:
    return DatasetRecord(
        id=row[0], name=row[1], owner_id=row[2], owner_role=row[3], spec=json.loads(row[4]),
        version=row[5], rows=row[6], created_at=row[7], updated_at=row[8],
        data_key=bytes(row[9]), data_key_id=row[10],
        policy=json.loads(row[11]) if row[11] is not None else None,
    )


# Up to this many keys, a lookup binds them as parameters and DuckDB uses the key's index;
# beyond, they are registered as an Arrow table and joined (binding thousands is slow).
POINT_LOOKUPS = 32


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """`table` visible to `con` as `name` for the block: a batch of keys joined, not bound."""
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)


class StateStore:
    """One DuckDB connection guarded by a lock: control-plane writes are small and serial."""

    def __init__(self, path: Path) -> None:
        self._con = duckdb.connect(str(path))
        self._lock = threading.RLock()
        # Dataset records are read on every request and written rarely: cached, and dropped on
        # any write (and at the end of any transaction, committed or rolled back).
        self._generation = 0
        self._cached: tuple[int, dict[str, DatasetRecord]] | None = None
        with self._lock:
            self._con.execute(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @contextmanager
    def transaction(self, *, keeps_datasets: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN … COMMIT (ROLLBACK on an exception). `keeps_datasets`: the caller writes no
        dataset record (a ledger), so the cached records stay valid."""
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            finally:
                if not keeps_datasets:
                    self._generation += 1
            self._con.execute("COMMIT")

    def ensure_schema(self, ddl: str) -> None:
        """Let a feature's own store module create its tables (CREATE TABLE IF NOT EXISTS …)."""
        with self._lock:
            self._con.execute(ddl)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, list(params)).fetchall()

    def query_joined(
        self, name: str, table: pa.Table, sql: str, params: Sequence[object] = ()
    ) -> list[tuple[Any, ...]]:
        """Run `sql` with `table` visible as `name`: thousands of keys, joined, not bound."""
        with self._lock, registered(self._con, name, table):
            return self._con.execute(sql, list(params)).fetchall()

    def table_joined(
        self, name: str, table: pa.Table, sql: str, params: Sequence[object] = ()
    ) -> pa.Table:
        """`query_joined` as an Arrow table: thousands of rows without a tuple per row."""
        with self._lock, registered(self._con, name, table):
            return self._con.sql(sql, params=list(params)).to_arrow_table()

    def run(self, sql: str, params: Sequence[object] = ()) -> None:
        with self._lock:
            self._generation += 1
            self._con.execute(sql, list(params))

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> bytes | None:
        with self._lock:
            row = self._con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return bytes(row[0]) if row else None

    def set_meta(self, key: str, value: bytes) -> None:
        with self._lock:
            self._generation += 1
            self._con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    # -- principals ---------------------------------------------------------------------------
    def add_principal(self, p: PrincipalRecord) -> None:
        with self._lock:
            self._con.execute(
                "INSERT INTO principals VALUES (?, ?, ?, ?, ?, ?, ?)",
                [p.id, p.role, p.name, p.uscc, p.token_id, p.token_hash, utcnow()],
            )

    def principal_by_token_id(self, token_id: str) -> PrincipalRecord | None:
        with self._lock:
            row = self._con.execute(
                "SELECT id, role, name, uscc, token_id, token_hash FROM principals "
                "WHERE token_id = ?",
                [token_id],
            ).fetchone()
        if row is None:
            return None
        return PrincipalRecord(row[0], row[1], row[2], row[3], row[4], bytes(row[5]))

    def principal_exists(self, principal_id: str, role: str | None = None) -> bool:
        with self._lock:
            row = self._con.execute(
                "SELECT role FROM principals WHERE id = ?", [principal_id]
            ).fetchone()
        return row is not None and (role is None or row[0] == role)

    def count_principals(self, role: str) -> int:
        with self._lock:
            row = self._con.execute(
                "SELECT count(*) FROM principals WHERE role = ?", [role]
            ).fetchone()
        return int(row[0]) if row else 0

    def uscc_taken(self, uscc: str) -> bool:
        with self._lock:
            row = self._con.execute("SELECT 1 FROM principals WHERE uscc = ?", [uscc]).fetchone()
        return row is not None

    # -- datasets -----------------------------------------------------------------------------
    def add_dataset(self, d: DatasetRecord) -> None:
        with self._lock:
            self._generation += 1
            self._con.execute(
                f"INSERT INTO datasets ({_DATASET_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                [d.id, d.name, d.owner_id, d.owner_role, json.dumps(d.spec), d.version, d.rows,
                 d.created_at, d.updated_at, d.data_key, d.data_key_id,
                 json.dumps(d.policy) if d.policy is not None else None],
            )

    def _datasets(self) -> dict[str, DatasetRecord]:
        with self._lock:
            if self._cached is not None and self._cached[0] == self._generation:
                return self._cached[1]
            rows = self._con.execute(
                _SELECT_DATASETS + " ORDER BY created_at, name"
            ).fetchall()
            records = {r[0]: _dataset(r) for r in rows}
            self._cached = (self._generation, records)
            return records

    def dataset(self, dataset_id: str) -> DatasetRecord | None:
        return self._datasets().get(dataset_id)

    def dataset_by_name(self, name: str) -> DatasetRecord | None:
        return next((d for d in self._datasets().values() if d.name == name), None)

    def datasets(self) -> list[DatasetRecord]:
        return list(self._datasets().values())

    def segments(self, dataset_id: str, version: int) -> list[Segment]:
        with self._lock:
            rows = self._con.execute(
                "SELECT file, written_version, rows FROM dataset_segments "
                "WHERE dataset_id = ? AND version = ? ORDER BY position",
                [dataset_id, version],
            ).fetchall()
        return [Segment(r[0], r[1], r[2]) for r in rows]

    def commit_version(
        self, dataset_id: str, expected_version: int, segments: list[Segment]
    ) -> int:
        """Make `segments` the next version; refuse if another upload committed first."""
        new_version = expected_version + 1
        with self.transaction() as con:
            row = con.execute("SELECT version FROM datasets WHERE id = ?", [dataset_id]).fetchone()
            if row is None or row[0] != expected_version:
                raise RuntimeError("dataset version moved during upload")
            con.executemany(
                "INSERT INTO dataset_segments VALUES (?, ?, ?, ?, ?, ?)",
                [[dataset_id, new_version, i, s.file, s.written_version, s.rows]
                 for i, s in enumerate(segments)],
            )
            # Older manifests are dropped: only the current version is kept and readable.
            con.execute(
                "DELETE FROM dataset_segments WHERE dataset_id = ? AND version < ?",
                [dataset_id, new_version],
            )
            con.execute(
                "UPDATE datasets SET version = ?, rows = ?, updated_at = ? WHERE id = ?",
                [new_version, sum(s.rows for s in segments), utcnow(), dataset_id],
            )
        return new_version

    def wrapped_keys(self) -> list[tuple[str, bytes]]:
        with self._lock:
            rows = self._con.execute("SELECT id, data_key FROM datasets").fetchall()
        return [(r[0], bytes(r[1])) for r in rows]
