"""The service's one way to run code: a bubblewrap runner that can import only `models`.

Checked at start; if the jail cannot start, jobs and scoring are refused (fail closed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from saferoom.training import TRAIN_ENTRY
from sandbox import JOB_LIMITS, BubblewrapRunner, SandboxError, check_jail

log = logging.getLogger("saferoom.jail")
MODELS = Path(__file__).resolve().parents[1] / "models"
# Importing it (scikit-learn, scipy, pyarrow) takes ~1.1 s of every training jail's time.
TRAINING_MODULE = TRAIN_ENTRY.partition(":")[0]


def start_runner() -> BubblewrapRunner | None:
    """A checked runner, or None (and a logged reason) when no jail can run on this host."""
    runner = BubblewrapRunner(import_roots=[MODELS])
    try:
        check_jail(runner)
    except SandboxError as exc:
        log.error("the jail failed its start check (%s): jobs and scoring are refused", exc.code)
        return None
    return runner


# Two: a job sent right after another (a modeler trying both templates) finds one ready.
# Each idle spare holds ~190 MB RSS (numpy, scipy, scikit-learn, pyarrow; libraries shared).
TRAINING_SPARES = 2


def keep_training_spare(runner: BubblewrapRunner | None) -> None:
    """Training jails wait ready with the templates imported, so a job does not wait for them."""
    if runner is not None:
        runner.keep_spare(JOB_LIMITS["train"], preload=(TRAINING_MODULE,), count=TRAINING_SPARES)
