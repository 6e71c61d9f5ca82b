"""No uploaded value reaches disk or the log in clear, and key rotation keeps data readable."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from saferoom.errors import ConfigurationError
from saferoom.room import Room
from saferoom.settings import load_settings
from tests.integration.conftest import REPO, start_server
from tests.integration.helpers import codes

SPEC = {
    "name": "court_records",
    "key": "uscc",
    "columns": [
        {"name": "uscc", "type": "string", "role": "key"},
        {"name": "case_name", "type": "string", "role": "attribute", "classification": "sensitive"},
        {"name": "amount", "type": "int", "role": "measure", "bounds": [0, 10**10]},
    ],
}
NAMES = ["绝密诉讼案甲乙丙", "ZEBRA-QUOKKA-SECRET-41"]
AMOUNTS = [987654321987, 123456789123]


def _needles(keys: list[str]) -> list[bytes]:
    out = [n.encode() for n in NAMES] + [k.encode() for k in keys]
    out += [str(a).encode() for a in AMOUNTS] + [struct.pack("<q", a) for a in AMOUNTS]
    return out


def _scan(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {n!r}" for n in needles if n in data]
    return found


def test_no_plaintext_anywhere_under_the_data_dir(tmp_path: Path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    keys = codes(2, seed=77)
    try:
        dept = server.new_principal("department")
        with server.client(dept["token"]) as c:
            ds = c.post("/v1/datasets", json=SPEC).json()
            csv = "uscc,case_name,amount\n" + "".join(
                f"{k},{n},{a}\n" for k, n, a in zip(keys, NAMES, AMOUNTS, strict=True)
            )
            headers = {"Content-Type": "text/csv"}
            assert c.put(f"/v1/datasets/{ds['id']}/data", content=csv, headers=headers).is_success
            assert c.put(f"/v1/datasets/{ds['id']}/data?mode=append", content=csv, headers=headers
                         ).is_success
            bad = csv + f"{keys[0]},{NAMES[0]},notanumber\n"
            r = c.put(f"/v1/datasets/{ds['id']}/data", content=bad, headers=headers)
            assert r.status_code == 422 and NAMES[0] not in r.text
    finally:
        server.stop()
    assert _scan(data_dir, _needles(keys)) == []
    log = server.log().encode()
    assert [n for n in _needles(keys) if n in log] == []

    # The sealed data is really there: the room reads it back, and after rotating the master
    # key (data not re-encrypted) it still does, while the old key no longer opens the room.
    settings = load_settings({}, {"data_dir": data_dir})
    old_key = (data_dir / "master.key").read_text()
    with_room = Room.open(settings)
    d = with_room.state.dataset(ds["id"])
    assert d is not None
    before = with_room.datasets.read(d)
    segments_before = sorted(p.name for p in (data_dir / "datasets").rglob("*.sealed"))
    with_room.close()
    assert before.column("case_name").to_pylist() == NAMES * 2

    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEROOM_")}
    out = subprocess.run([sys.executable, "-m", "saferoom", "keys", "rotate", "--data-dir",
                          str(data_dir)], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (data_dir / "master.key").read_text() != old_key
    assert oct((data_dir / "master.key").stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in (data_dir / "datasets").rglob("*.sealed")) == segments_before
    room = Room.open(settings)
    try:
        after = room.datasets.read(room.state.dataset(ds["id"]))  # type: ignore[arg-type]
        assert after.equals(before)
    finally:
        room.close()
    old_env = {"SAFEROOM_MASTER_KEY": old_key.strip()}
    verified = subprocess.run([sys.executable, "-m", "saferoom", "audit", "verify", "--data-dir",
                               str(data_dir)], cwd=REPO, env={**env}, capture_output=True,
                              text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with pytest.raises(ConfigurationError, match="does not match"):
        Room.open(load_settings(old_env, {"data_dir": data_dir}))


def test_tampered_segment_is_detected_not_decrypted(tmp_path: Path):
    settings = load_settings({}, {"data_dir": tmp_path / "d"})
    room = Room.open(settings)
    try:
        from saferoom import datasets as ops
        from saferoom.auth import Principal
        from saferoom.dataset_spec import DatasetCreate
        from saferoom.errors import TamperedData

        owner = Principal("dep_1", "department", "dept")
        d = ops.create_dataset(room, owner, DatasetCreate.model_validate(SPEC))
        keys = codes(2, seed=5)
        csv = "uscc,case_name,amount\n" + "".join(f"{k},x,{i}\n" for i, k in enumerate(keys))
        ops.upload(room, d, csv.encode(), "csv", append=False)
        d = room.state.dataset(d.id)
        assert d is not None
        assert isinstance(room.datasets.read(d), pa.Table)
        (segment,) = (tmp_path / "d" / "datasets" / d.id).glob("*.sealed")
        raw = bytearray(segment.read_bytes())
        raw[40] ^= 0x01
        segment.write_bytes(bytes(raw))
        with pytest.raises(TamperedData):
            room.datasets.read(d)
    finally:
        room.close()
