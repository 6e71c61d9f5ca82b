"""The command line: init prints a working admin token once; the demo loads a verifiable room."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from saferoom.room import Room
from saferoom.settings import load_settings
from tests.integration.conftest import REPO, free_port

ENV = {k: v for k, v in os.environ.items() if not k.startswith("SAFEROOM_")}


def _saferoom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "saferoom", *args], cwd=REPO,
                          env={**ENV, **(env or {})}, capture_output=True, text=True, timeout=300)


def test_init_creates_keys_and_one_admin_token(tmp_path: Path):
    data = tmp_path / "room"
    out = _saferoom("init", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().rsplit(" ", 1)[-1]
    assert token.startswith("sr_")
    assert oct((data / "master.key").stat().st_mode & 0o777) == "0o600"
    again = _saferoom("init", "--data-dir", str(data))
    assert again.returncode != 0 and token not in again.stdout + again.stderr

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "saferoom", "serve", "--data-dir", str(data),
                             "--port", str(port)], cwd=REPO, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/me",
                              headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.HTTPError:
                import time

                time.sleep(0.1)
        assert r.json()["role"] == "admin"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # A clean shutdown leaves a signed checkpoint covering every event.
    room = Room.open(load_settings({}, {"data_dir": data}))
    try:
        assert room.audit.checkpoints()[-1].size == room.audit.size
    finally:
        room.close()


def test_serve_refuses_placeholder_admin_token(tmp_path: Path):
    out = _saferoom("serve", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()),
                    env={"SAFEROOM_ADMIN_TOKEN": "changethis"})
    assert out.returncode == 2
    assert "SAFEROOM_ADMIN_TOKEN" in out.stderr and "Traceback" not in out.stderr


def test_demo_loads_every_dataset_and_the_log_verifies(tmp_path: Path):
    data = tmp_path / "demo"
    out = _saferoom("demo", "--data-dir", str(data), "--enterprises", "3000")
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("market_registry", "tax_annual", "social_insurance", "utilities",
                 "court_records", "loan_outcomes"):
        assert name in out.stdout
    room = Room.open(load_settings({}, {"data_dir": data}))
    try:
        registry = room.state.dataset_by_name("market_registry")
        assert registry is not None and registry.rows == 3000
        assert room.datasets.read(registry).num_rows == 3000
    finally:
        room.close()
    assert _saferoom("audit", "verify", "--data-dir", str(data)).returncode == 0
    # Run twice: the demo may replace only a directory it made itself.
    assert _saferoom("demo", "--data-dir", str(data), "--enterprises", "500").returncode == 0
    other = tmp_path / "precious"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    refused = _saferoom("demo", "--data-dir", str(other), "--enterprises", "500")
    assert refused.returncode != 0 and (other / "keep.txt").exists()
