"""Trained models: their lineage and metrics in the state DB, their artifacts sealed on disk.

An artifact is opaque bytes made in a jail; the service stores and forwards it, never loads it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from saferoom.crypto import MasterKey, key_id, new_key
from saferoom.sealed_file import SealedWriter, read_sealed
from saferoom.state import StateStore

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS model_seq;
CREATE TABLE IF NOT EXISTS models (
    seq BIGINT NOT NULL DEFAULT nextval('model_seq'), id VARCHAR PRIMARY KEY,
    bank_id VARCHAR NOT NULL, job_id VARCHAR NOT NULL, template VARCHAR, code VARCHAR,
    code_digest VARCHAR, features VARCHAR[] NOT NULL, label VARCHAR NOT NULL,
    lineage JSON NOT NULL, metrics JSON NOT NULL, data_key BLOB NOT NULL,
    data_key_id VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL);
"""
CHUNK = 8 << 20
_COLUMNS = ("id, bank_id, job_id, template, code, code_digest, features, label, lineage, "
            "metrics, created_at")


def model_key_context(model_id: str) -> str:
    return f"model-key|{model_id}"


@dataclass(frozen=True)
class Model:
    id: str
    bank_id: str
    job_id: str
    template: str | None
    code: str | None
    code_digest: str | None
    features: tuple[str, ...]
    label: str
    lineage: dict[str, Any]  # datasets and the versions trained on
    metrics: dict[str, Any]
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "job_id": self.job_id, "template": self.template or "custom",
                "code_digest": self.code_digest, "features": list(self.features),
                "label": self.label, "lineage": self.lineage, "metrics": self.metrics,
                "created_at": self.created_at.isoformat()}


def _model(r: Sequence[Any]) -> Model:
    return Model(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6]), r[7], json.loads(r[8]),
                 json.loads(r[9]), r[10])


class ModelStore:
    def __init__(self, state: StateStore, master: MasterKey, root: Path) -> None:
        self._state = state
        self._master = master
        self._root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        state.ensure_schema(SCHEMA)

    def add(self, model: Model, artifact: bytes) -> None:
        """Seal the artifact under a fresh key, then record the model (file first: no dangling
        record if the disk fails)."""
        key = new_key()
        kid = key_id(key)
        writer = SealedWriter(self._root / f"{model.id}.sealed", key, f"{kid}|{model.id}")
        try:
            for i in range(0, max(len(artifact), 1), CHUNK):
                writer.write(artifact[i:i + CHUNK])
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        m = model
        self._state.run(
            f"INSERT INTO models ({_COLUMNS}, data_key, data_key_id) "  # noqa: S608
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [m.id, m.bank_id, m.job_id, m.template, m.code, m.code_digest, list(m.features),
             m.label, json.dumps(m.lineage), json.dumps(m.metrics), m.created_at,
             self._master.wrap(key, model_key_context(m.id)), kid],
        )

    def get(self, model_id: str) -> Model | None:
        rows = self._state.query(f"SELECT {_COLUMNS} FROM models WHERE id = ?",  # noqa: S608
                                 [model_id])
        return _model(rows[0]) if rows else None

    def for_bank(self, bank_id: str) -> list[Model]:
        rows = self._state.query(
            f"SELECT {_COLUMNS} FROM models WHERE bank_id = ? ORDER BY seq",  # noqa: S608
            [bank_id])
        return [_model(r) for r in rows]

    def artifact(self, model_id: str) -> bytes:
        rows = self._state.query("SELECT data_key, data_key_id FROM models WHERE id = ?",
                                 [model_id])
        wrapped, kid = rows[0]
        key = self._master.unwrap(bytes(wrapped), model_key_context(model_id))
        return b"".join(read_sealed(self._root / f"{model_id}.sealed", key,
                                    f"{kid}|{model_id}"))
