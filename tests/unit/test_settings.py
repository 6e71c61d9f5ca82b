"""Settings come from one mapping and refuse placeholders and malformed keys."""

from __future__ import annotations

import base64
import os

import pytest

from saferoom.errors import ConfigurationError
from saferoom.settings import load_settings


def test_defaults_and_overrides(tmp_path) -> None:
    s = load_settings({"SAFEROOM_MAX_UPLOAD_BYTES": "1000"}, {"data_dir": tmp_path})
    assert s.data_dir == tmp_path.resolve()
    assert s.max_upload_bytes == 1000
    assert s.master_key is None and s.admin_token is None


def test_master_key_base64_and_hex(tmp_path) -> None:
    key = os.urandom(32)
    for text in (base64.b64encode(key).decode(), key.hex()):
        s = load_settings({"SAFEROOM_MASTER_KEY": text}, {"data_dir": tmp_path})
        assert s.master_key == key
    assert key.hex() not in repr(s)


@pytest.mark.parametrize(
    "env",
    [
        {"SAFEROOM_ADMIN_TOKEN": "changethis"},
        {"SAFEROOM_ADMIN_TOKEN": "short"},
        {"SAFEROOM_MASTER_KEY": "changethis"},
        {"SAFEROOM_MASTER_KEY": "00" * 32},
        {"SAFEROOM_MASTER_KEY": base64.b64encode(b"x" * 16).decode()},
        {"SAFEROOM_MAX_UPLOAD_BYTES": "-1"},
    ],
)
def test_refuses_placeholders_and_malformed(tmp_path, env) -> None:
    with pytest.raises(ConfigurationError):
        load_settings(env, {"data_dir": tmp_path})


def test_needs_a_data_dir() -> None:
    with pytest.raises(ConfigurationError):
        load_settings({})


def test_ignores_the_process_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SAFEROOM_ADMIN_TOKEN", "changethis")
    assert load_settings({}, {"data_dir": tmp_path}).admin_token is None
