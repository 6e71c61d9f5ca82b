"""Per-job resource limits for a jail, and the safe defaults for each kind of job.

Exact integers only (no floats for sizes); the in-jail bootstrap turns them into setrlimit calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class JailLimits:
    """What one jail may use. Each field is enforced by the mechanism named beside it."""

    cpu_seconds: int  # RLIMIT_CPU of the jail's processes (SIGKILL at the limit)
    memory_bytes: int  # RLIMIT_AS of each process: a memory bomb gets MemoryError
    max_processes: int  # RLIMIT_NPROC for the jail's unprivileged uid, threads included
    file_size_bytes: int  # RLIMIT_FSIZE: largest file the job may write (EFBIG past it)
    open_files: int  # RLIMIT_NOFILE
    output_bytes: int  # cap on the result pipe, counted by the service; past it the jail dies
    wall_seconds: float  # wall-clock deadline kept by the service; past it the jail dies
    tmpfs_bytes: int  # size of the private /tmp (tmpfs size=), so a disk fill gets ENOSPC
    log_bytes: int = MiB  # cap on each of stdout and stderr; past it the jail dies

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "wall_seconds":
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                ok = ok and math.isfinite(value) and value > 0
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            if not ok:
                raise ValueError(f"JailLimits.{f.name} must be a positive number")

    def with_changes(self, **changes: Any) -> JailLimits:
        """A copy with some limits changed (validated again)."""
        return replace(self, **changes)

    def rlimits(self) -> dict[str, int]:
        """The values the in-jail bootstrap passes to setrlimit, by resource name."""
        return {
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_AS": self.memory_bytes,
            "RLIMIT_NPROC": self.max_processes,
            "RLIMIT_FSIZE": self.file_size_bytes,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_CORE": 0,
        }


JOB_LIMITS: dict[str, JailLimits] = {
    # Training a joint model: minutes of CPU, a few GiB, an artifact of up to 256 MiB back.
    "train": JailLimits(
        cpu_seconds=900,
        memory_bytes=4 * GiB,
        max_processes=32,
        file_size_bytes=256 * MiB,
        open_files=256,
        output_bytes=256 * MiB,
        wall_seconds=1200,
        tmpfs_bytes=256 * MiB,
    ),
    # Scoring consenting applicants: short, and a warm jail lives across many calls.
    "score": JailLimits(
        cpu_seconds=3600,
        memory_bytes=2 * GiB,
        max_processes=32,
        file_size_bytes=16 * MiB,
        open_files=256,
        output_bytes=64 * MiB,
        wall_seconds=60,
        tmpfs_bytes=64 * MiB,
    ),
    # A dry run of custom code on mock rows, for the bank and the reviewing department.
    "dry_run": JailLimits(
        cpu_seconds=120,
        memory_bytes=2 * GiB,
        max_processes=32,
        file_size_bytes=64 * MiB,
        open_files=256,
        output_bytes=32 * MiB,
        wall_seconds=180,
        tmpfs_bytes=64 * MiB,
    ),
}
