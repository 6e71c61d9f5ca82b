"""What a jail is asked to run (`JailJob`) and what comes back out of it (`JailResult`).

Both are frozen values; names of inputs and outputs are short identifiers, never data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from sandbox.errors import InvalidJob
from sandbox.limits import JOB_LIMITS, JailLimits

IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
ENTRY_PATTERN = re.compile(rf"{IDENTIFIER}(\.{IDENTIFIER})*:{IDENTIFIER}")
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")

Status = Literal["ok", "error", "limit"]


def check_entry(entry: str) -> str:
    """`entry` as given if it is "package.module:function", else InvalidJob."""
    if not isinstance(entry, str) or not ENTRY_PATTERN.fullmatch(entry):
        raise InvalidJob("entry must look like 'package.module:function'")
    return entry


def check_names(kind: str, names: Mapping[str, Any]) -> None:
    """Input, blob and output names are identifiers: they travel in headers and logs."""
    for name in names:
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise InvalidJob(f"{kind} names must be identifiers of at most 128 characters")


def check_inputs(inputs: Mapping[str, Any]) -> None:
    """Inputs are named pyarrow Tables."""
    check_names("input", inputs)
    if not all(isinstance(table, pa.Table) for table in inputs.values()):
        raise InvalidJob("inputs must be pyarrow Tables")


@dataclass(frozen=True, eq=False)
class JailJob:
    """One call of `entry(inputs, params, blobs)` inside a fresh jail."""

    entry: str  # "module:function", imported inside the jail (e.g. "models.entry:train")
    inputs: Mapping[str, pa.Table] = field(default_factory=dict)  # sent as Arrow IPC streams
    params: Mapping[str, Any] = field(default_factory=dict)  # JSON, no NaN
    blobs: Mapping[str, bytes] = field(default_factory=dict)  # opaque bytes, e.g. an artifact
    code: str | None = None  # a bank's module source, importable in the jail as `user_code`
    limits: JailLimits = field(default_factory=lambda: JOB_LIMITS["dry_run"])

    def __post_init__(self) -> None:
        check_entry(self.entry)
        check_inputs(self.inputs)
        check_names("blob", self.blobs)
        for blob in self.blobs.values():
            if not isinstance(blob, bytes | bytearray | memoryview):
                raise InvalidJob("blobs must be bytes")
        if self.code is not None and not isinstance(self.code, str):
            raise InvalidJob("code must be Python source text")
        if not isinstance(self.limits, JailLimits):
            raise InvalidJob("limits must be JailLimits")


@dataclass(frozen=True, eq=False)
class JailResult:
    """The outcome of one jailed call. Outputs are present only when `status` is "ok".

    `error` carries the exception type and message from inside the jail and `stdout`/`stderr`
    what the code printed: both may echo data values, so they are for the reviewing department
    and for dry runs on mock data; the service decides what, if anything, a bank sees.
    """

    status: Status
    limit: str | None = None  # which limit fired: cpu, memory, wall, output, log, processes, ...
    error: str | None = None
    tables: Mapping[str, pa.Table] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    exit_code: int | None = None  # negative: killed by that signal
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0  # as the jail measured itself; 0 when it ended without reporting
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"
