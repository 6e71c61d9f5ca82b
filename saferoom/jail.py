"""The service's one way to run code: a bubblewrap runner that can import only `models`.

Checked at start; if the jail cannot start, jobs and scoring are refused (fail closed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sandbox import BubblewrapRunner, SandboxError, check_jail

log = logging.getLogger("saferoom.jail")
MODELS = Path(__file__).resolve().parents[1] / "models"


def start_runner() -> BubblewrapRunner | None:
    """A checked runner, or None (and a logged reason) when no jail can run on this host."""
    runner = BubblewrapRunner(import_roots=[MODELS])
    try:
        check_jail(runner)
    except SandboxError as exc:
        log.error("the jail failed its start check (%s): jobs and scoring are refused", exc.code)
        return None
    return runner
