"""A small real room (DuckDB files, sealed datasets) with policies and an agreement, in process."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from policies.facts import Agreement
from saferoom import datasets as ops
from saferoom.auth import Principal
from saferoom.dataset_spec import DatasetCreate
from saferoom.room import Room
from saferoom.settings import load_settings

BANK = Principal("ban_test", "bank", "bank")
DEPT = Principal("dep_test", "department", "dept")
PURPOSE = "credit_research"


def aggregate_policy(epsilon: float = 100.0, min_group_size: int = 10, **extra: object) -> dict:
    return {"aggregate": {"purposes": [PURPOSE], "functions": ["count", "sum", "avg"],
                          "epsilon_per_period": epsilon, "min_group_size": min_group_size,
                          **extra}}


@dataclass
class QueryRoom:
    room: Room

    def add(self, spec: dict, table: pa.Table, policy: dict | None = None) -> str:
        d = ops.create_dataset(self.room, DEPT, DatasetCreate.model_validate(spec))
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        ops.upload(self.room, d, buf.getvalue(), "csv", append=False)
        if policy is not None:
            self.room.state.run("UPDATE datasets SET policy = ? WHERE id = ?",
                                [json.dumps(policy), d.id])
        return d.id

    def agree(self, datasets: list[str], purposes: tuple[str, ...] = (PURPOSE,)) -> None:
        now = datetime.now(UTC)
        self.room.agreements.add(
            Agreement(f"agr_{len(self.room.agreements.all())}", BANK.id, frozenset(datasets),
                      frozenset(purposes), now + timedelta(days=30)), now)


@pytest.fixture
def qroom(tmp_path: Path) -> Iterator[QueryRoom]:
    room = Room.open(load_settings({}, {"data_dir": tmp_path / "room"}))
    yield QueryRoom(room)
    room.close()


@pytest.fixture(autouse=True, scope="session")
def _opendp() -> None:
    from saferoom import dp

    dp.enable()
