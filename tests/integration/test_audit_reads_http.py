"""Allowed reads of datasets and of the caller itself leave events; creates are undone with
their event when the log refuses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit.errors import AuditError, AuditWriteError
from saferoom.api.datasets import post_dataset
from saferoom.api.principals import PrincipalCreate, post_principal
from saferoom.auth import Principal
from saferoom.dataset_spec import DatasetCreate
from saferoom.recorder import Call
from saferoom.room import Room
from saferoom.settings import load_settings
from tests.integration.conftest import Server
from tests.integration.helpers import TAX_SPEC, codes


def test_dataset_and_me_reads_are_audited(server: Server) -> None:
    dept = server.new_principal("department", "tax bureau")
    auditor = server.new_principal("auditor")
    with server.client(dept["token"]) as c:
        ds = c.post("/v1/datasets", json=TAX_SPEC).json()
        for path in ("/v1/datasets", f"/v1/datasets/{ds['id']}",
                     f"/v1/datasets/{ds['id']}/mock?rows=3", "/v1/me"):
            assert c.get(path).status_code == 200, path
    with server.client(auditor["token"]) as c:
        events = c.get("/v1/audit/events", params={"actor": dept["id"], "limit": 1000}).json()
    seen = {(e["action"], e["resource"], e["decision"], e["digest"] is not None)
            for e in events["events"]}
    assert ("dataset.list", "datasets", "allow", True) in seen
    assert ("dataset.read", ds["id"], "allow", True) in seen
    assert ("dataset.mock", ds["id"], "allow", True) in seen
    assert ("me.read", "me", "allow", True) in seen


class _RefusingLog:
    def append(self, drafts: Any) -> Any:
        raise AuditWriteError("the log is down")


@pytest.fixture
def room(tmp_path: Path) -> Any:
    room = Room.open(load_settings({}, {"data_dir": tmp_path / "data"}))
    yield room
    room.close()


def test_a_create_the_log_refuses_is_undone(room: Room) -> None:
    admin = Principal("adm_x", "admin", "admin")
    uscc = codes(1, seed=9)[0]
    with pytest.raises(AuditError):
        post_principal(PrincipalCreate(role="enterprise", name="firm", uscc=uscc),
                       Call(_RefusingLog(), "principal.create", admin), room)  # type: ignore[arg-type]
    assert not room.state.uscc_taken(uscc)

    dept = Principal("dep_x", "department", "tax bureau")
    with pytest.raises(AuditError):
        post_dataset(DatasetCreate.model_validate(TAX_SPEC),
                     Call(_RefusingLog(), "dataset.create", dept), room)  # type: ignore[arg-type]
    assert room.state.dataset_by_name(TAX_SPEC["name"]) is None
