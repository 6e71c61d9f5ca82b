"""The five packages run from this repository, never from site-packages, and obey the layering."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["saferoom", "policies", "models", "sandbox", "audit"])
def test_package_comes_from_the_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / name


def test_import_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    # A test dependency (pyproject.toml): missing, it is a broken environment, not a skip.
    assert linter.exists(), "import-linter is not installed: pip install -e '.[test]'"
    out = subprocess.run([str(linter)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:]
    assert "broken" in out.stdout and "0 broken" in out.stdout
