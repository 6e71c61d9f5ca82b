"""Watch evaluation in process, without the worker thread: idempotent per dataset version,
no alert lost or repeated across a crash, and a lapsed consent's baseline is forgotten."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from policies.consent import ConsentRequest
from saferoom import datasets as ops
from saferoom.api.agreements import AgreementCreate, add_agreement
from saferoom.api.consents import grant_consent, revoke_consent
from saferoom.api.dataset_policy import set_policy
from saferoom.api.principals import PrincipalCreate, create_principal
from saferoom.auth import Principal
from saferoom.dataset_spec import DatasetCreate
from saferoom.query.service import engine_for
from saferoom.room import Room
from saferoom.settings import load_settings
from saferoom.state import DatasetRecord, utcnow
from saferoom.verification import VerificationService
from saferoom.watches import WatchRequest, WatchService
from tests.integration.helpers import codes

PURPOSE = "post_loan_monitoring"
COURTS = {"name": "court_records", "key": "uscc",
          "columns": [{"name": "uscc", "type": "string", "role": "key"},
                      {"name": "judgments", "type": "int", "role": "measure", "bounds": [0, 50]}]}
POLICY = {"verify": {"purposes": [PURPOSE], "consent_required": True,
                     "fields": {"judgments": [">="]}, "max_distinct_values_per_consent": 3}}
RULE = {"dataset": "court_records", "field": "judgments", "op": ">=", "value": 1}


@dataclass
class World:
    room: Room
    service: WatchService
    dept: Principal
    bank: Principal
    firm: Principal
    courts: DatasetRecord

    def upload(self, judgments: int) -> None:
        """The firm has `judgments`; a second firm keeps a row so the version is never empty."""
        other = codes(2, seed=5)[1]
        body = f"uscc,judgments\n{self.firm.uscc},{judgments}\n{other},0\n".encode()
        current = self.room.state.dataset(self.courts.id)
        assert current is not None
        ops.upload(self.room, current, body, "csv", append=False)

    def consent(self) -> str:
        stored, _ = grant_consent(self.room, self.room.call("consent.grant", self.firm),
                                  ConsentRequest(grantee=self.bank.id, purpose=PURPOSE,
                                                 datasets=["court_records"],
                                                 expires_at=utcnow() + timedelta(days=30),
                                                 acknowledge_risks=True))
        return stored.consent.id

    def alerts(self) -> list[dict[str, Any]]:
        call = self.room.call("alert.list", self.bank)
        return list(self.service.alerts(self.bank, 0, 1000, call)["alerts"])


def _principal(room: Room, role: str, uscc: str | None = None) -> Principal:
    view, _ = create_principal(room, PrincipalCreate(role=role, name=role, uscc=uscc))  # type: ignore[arg-type]
    return Principal(view["id"], view["role"], view["name"], view.get("uscc"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    room = Room.open(load_settings({}, {"data_dir": tmp_path / "data"}))
    engine = engine_for(room)
    admin, dept, bank = (_principal(room, r) for r in ("admin", "department", "bank"))
    firm = _principal(room, "enterprise", codes(1, seed=5)[0])
    courts = ops.create_dataset(room, dept, DatasetCreate.model_validate(COURTS))
    set_policy(room, room.call("policy.put", dept), courts, POLICY)
    add_agreement(room, room.call("agreement.create", admin), AgreementCreate(
        bank_id=bank.id, datasets=["court_records"], purposes=[PURPOSE],
        valid_until=utcnow() + timedelta(days=30)))
    service = WatchService(room, VerificationService(room, engine), engine)
    w = World(room, service, dept, bank, firm, courts)
    w.upload(0)
    yield w
    engine.close()
    room.close()


def _watch(w: World) -> str:
    request = WatchRequest(purpose=PURPOSE, subjects=[w.firm.uscc or ""], rules=[RULE])
    return str(w.service.create(w.bank, request, w.room.call("watch.create", w.bank))["id"])


def test_each_version_is_evaluated_once(world: World) -> None:
    world.consent()
    _watch(world)
    world.upload(2)
    assert world.service.run_pending() == (1, 0)
    assert world.service.run_pending() == (0, 0)  # nothing is behind: no second alert
    assert len(world.alerts()) == 1


def test_a_crash_between_audit_and_commit_loses_and_repeats_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    world.consent()
    _watch(world)
    world.upload(2)
    commit = world.service.store.commit

    def crash(*args: Any) -> bool:
        monkeypatch.setattr(world.service.store, "commit", commit)
        raise RuntimeError("the process died here")

    monkeypatch.setattr(world.service.store, "commit", crash)
    assert world.service.run_pending() == (0, 1)
    assert world.alerts() == []  # audited, not yet stored, so not readable
    assert world.service.run_pending() == (1, 0)
    assert world.service.run_pending() == (0, 0)
    assert len(world.alerts()) == 1
    assert [e.action for e in world.room.audit.events(subject=world.firm.uscc, limit=100)
            ].count("watch.alert") == 2  # the event may repeat; the alert does not


def test_a_lapsed_consent_sets_a_fresh_baseline(world: World) -> None:
    first = world.consent()
    _watch(world)
    revoke_consent(world.room, world.room.call("consent.revoke", world.firm), first)
    world.upload(1)  # true, but not evaluated: no consent
    world.service.run_pending()
    world.consent()
    world.upload(2)  # the first evaluation under the new consent is its baseline
    world.service.run_pending()
    assert world.alerts() == []
    world.upload(0)
    world.service.run_pending()
    world.upload(3)
    assert world.service.run_pending() == (1, 0)


def test_a_failing_commit_listener_does_not_fail_the_upload(world: World) -> None:
    def broken(dataset_id: str, version: int) -> None:
        raise RuntimeError("listener bug")

    stop = world.room.datasets.on_commit(broken)
    try:
        world.upload(4)
    finally:
        stop()
    current = world.room.state.dataset(world.courts.id)
    assert current is not None and current.version == 2


def _verification(w: World, subjects: list[str]) -> tuple[VerificationService, Any]:
    from saferoom.verification import VerificationRequest

    request = VerificationRequest.model_validate(
        {"purpose": PURPOSE, "subjects": subjects,
         "checks": [{"dataset": "court_records", "field": "judgments", "op": ">=", "value": 1}]})
    return w.service._verify, request


def test_verification_reads_only_the_subjects_it_may_answer(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    world.consent()
    stranger = codes(3, seed=9)[2]  # gave no consent
    service, request = _verification(world, [world.firm.uscc or "", stranger])
    read: list[list[str]] = []
    verify = service._engine.verify
    monkeypatch.setattr(service._engine, "verify",
                        lambda source, schema, subjects, checks: read.append(list(subjects))
                        or verify(source, schema, subjects, checks))
    body = service.verify(world.bank, request, world.room.call("verification.create", world.bank))
    assert read == [[world.firm.uscc]]
    assert [r["reason"] for r in body["results"] if r["uscc"] == stranger] == ["consent_required"]


def test_a_failed_read_is_in_each_subjects_access_log(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    world.consent()
    service, request = _verification(world, [world.firm.uscc or ""])

    def broken(*args: Any) -> Any:
        raise RuntimeError("disk")

    monkeypatch.setattr(service._engine, "verify", broken)
    with pytest.raises(RuntimeError):
        service.verify(world.bank, request, world.room.call("verification.create", world.bank))
    events = world.room.audit.events(subject=world.firm.uscc, action="verification.create")
    assert [(e.decision, e.reason) for e in events] == [("deny", "internal_error")]
