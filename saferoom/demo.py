"""The main job on the embedded default: Luoyang's departments load data into a fresh room.

Uses the same operations as the HTTP API (create, upload, audit) and then tours each role.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from saferoom import datasets as ops
from saferoom import synthetic
from saferoom.api.principals import PrincipalCreate, create_principal
from saferoom.auth import Principal
from saferoom.dataset_spec import DatasetCreate
from saferoom.demo_governance import governance_step
from saferoom.demo_modeling import modeling_step
from saferoom.demo_monitoring import monitoring_step
from saferoom.demo_queries import query_step
from saferoom.demo_verification import verification_step
from saferoom.mock import mock_table
from saferoom.query.service import engine_for
from saferoom.room import Room
from saferoom.settings import Settings

MARKER = ".saferoom-demo"
DEPARTMENT_NAMES = {
    "market_regulation": "洛阳市市场监督管理局",
    "tax": "国家税务总局洛阳市税务局",
    "social_insurance": "洛阳市人力资源和社会保障局",
    "utilities": "国网洛阳供电公司",
    "courts": "洛阳市中级人民法院",
}
Echo = Callable[[str], None]


def _fresh_dir(settings: Settings) -> None:
    """Reuse only a directory an earlier demo made; never wipe anything else."""
    d = settings.data_dir
    if d.exists() and any(d.iterdir()):
        if not (d / MARKER).exists():
            raise SystemExit(f"{d} is not empty and was not made by the demo; choose another "
                             "--data-dir")
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / MARKER).write_text("made by `saferoom demo`; the demo may wipe this directory\n")


def _principal(room: Room, role: str, name: str, uscc: str | None = None) -> tuple[Principal, str]:
    request = PrincipalCreate(role=role, name=name, uscc=uscc)  # type: ignore[arg-type]
    view, token = create_principal(room, request)
    room.call("principal.create").record(
        resource=view["id"], subjects=[uscc] if uscc else [], released=view
    )
    return Principal(view["id"], view["role"], view["name"], view.get("uscc")), token


def _csv_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def run_demo(
    settings: Settings, *, enterprises: int, seed: int, echo: Echo = print
) -> dict[str, Any]:
    started = time.perf_counter()
    _fresh_dir(settings)
    settings = replace(settings, admin_token=None)
    room = Room.open(settings)
    try:
        return _tour(room, enterprises, seed, echo, started)
    finally:
        room.close()


def _tour(room: Room, enterprises: int, seed: int, echo: Echo, started: float) -> dict[str, Any]:
    echo(f"SafeRoom demo · 洛阳市信易贷数据安全屋 · {enterprises:,} synthetic enterprises")
    echo(f"data dir: {room.settings.data_dir}")
    tokens: dict[str, str] = {}
    people: dict[str, Principal] = {}
    for key, name in [("admin", "平台管理员"), ("auditor", "市审计局"),
                      ("bank", "洛阳银行普惠金融部")]:
        people[key], tokens[key] = _principal(room, key, name)
    for dept, name in DEPARTMENT_NAMES.items():
        people[dept], tokens[dept] = _principal(room, "department", name)

    t = time.perf_counter()
    frames = synthetic.generate(enterprises, seed=seed)
    echo(f"[1/3] generated {sum(len(f) for f in frames.values()):,} rows for "
         f"{len(frames)} datasets in {time.perf_counter() - t:.1f}s")

    echo("[2/3] departments load their datasets (validated, sealed with AES-256-GCM):")
    for name, spec in synthetic.DATASET_SPECS.items():
        owner = people["bank"] if spec.department == "bank" else people[spec.department]
        body = DatasetCreate.model_validate(spec.body)
        t = time.perf_counter()
        record = ops.create_dataset(room, owner, body)
        room.call("dataset.create", owner).record(resource=record.id, released=body.name)
        table = pa.Table.from_pandas(frames[name], preserve_index=False)
        rows, version = ops.upload(room, record, _csv_bytes(table), "csv", append=False)
        room.call("dataset.upload", owner).record(
            resource=record.id, released={"rows": rows, "version": version}
        )
        took = time.perf_counter() - t
        echo(f"      {name:<17} {rows:>9,} rows  by {owner.name:<16} "
             f"{rows / max(took, 1e-9):>11,.0f} rows/s")

    first = frames["market_registry"].iloc[0]
    enterprise, tokens["enterprise"] = _principal(
        room, "enterprise", str(first["name"]), str(first["uscc"])
    )
    people["enterprise"] = enterprise

    echo("[3/3] what each role can do now:")
    visible = [d for d in room.state.datasets() if ops.can_see(people["bank"], d)]
    echo(f"  bank ({people['bank'].name}) sees {len(visible)} dataset schemas, never rows; "
         "a mock sample of market_registry:")
    registry = room.state.dataset_by_name("market_registry")
    assert registry is not None
    sample = mock_table(DatasetCreate.model_validate(registry.spec), 2, seed=seed).to_pylist()
    for row in sample:
        echo("      " + ", ".join(f"{k}={v}" for k, v in row.items()))
    echo("  department: owns its datasets and uploads new versions (replace or append)")
    echo(f"  enterprise ({enterprise.name}): holds token; consents, reads its data and access log")
    # Agreements, policies, consents and an access log: saferoom/demo_governance.py.
    firms = [enterprise]
    for i, row in enumerate(frames["market_registry"].iloc[1:3].to_dict("records"), start=2):
        key = f"enterprise{i}"
        people[key], tokens[key] = _principal(room, "enterprise", str(row["name"]),
                                              str(row["uscc"]))
        firms.append(people[key])
    governance_step(room, people, firms, echo)
    engine = engine_for(room)  # one for every step, as in the service: datasets decrypted once
    try:
        verification_step(room, engine, people["bank"], firms, echo)
        query_step(room, engine, people["bank"], echo)
        modeling_step(room, engine, people["bank"], firms, echo)
        monitoring_step(room, engine, people, frames, echo, _principal)
    finally:
        engine.close()
    report_cp = room.audit.checkpoint()
    echo(f"  auditor: {room.audit.size} audit events, signed checkpoint at size {report_cp.size} "
         f"root {report_cp.root[:16]}…")
    echo(f"done in {time.perf_counter() - started:.1f}s. Serve this room and try it:")
    echo(f"  python -m saferoom serve --data-dir {room.settings.data_dir}")
    echo(f"  curl -H 'Authorization: Bearer {tokens['bank']}' "
         "http://127.0.0.1:8000/v1/datasets")
    echo(f"  python -m saferoom audit verify --data-dir {room.settings.data_dir}")
    token_file = room.settings.data_dir / "demo-tokens.txt"
    with os.fdopen(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.writelines(f"{k}\t{people[k].id}\t{v}\n" for k, v in tokens.items())
    echo(f"  demo tokens for every role: {room.settings.data_dir / 'demo-tokens.txt'}")
    return {"tokens": tokens, "principals": people}
