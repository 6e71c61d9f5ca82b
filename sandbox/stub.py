"""`StubRunner`: an in-process stand-in for unit tests of the service. It does NOT isolate.

It calls Python callables the test registers (never job source) and checks outputs like a jail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from sandbox.arrow_check import decode_table
from sandbox.errors import InvalidJob, OutputRejected
from sandbox.inside import wire
from sandbox.job import JailJob, JailResult, check_names

Handler = Callable[[dict[str, pa.Table], dict[str, Any], dict[str, bytes]], Any]


class StubRunner:
    """Maps entry names to callables; records every job it was given (`jobs`).

    Only for tests of code that calls a `Runner`: no jail, no limits, no separate process, and
    `job.code` is recorded but never executed (the service never runs job code in-process).
    """

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self.handlers = dict(handlers)
        self.jobs: list[JailJob] = []

    def run(self, job: JailJob) -> JailResult:
        self.jobs.append(job)
        handler = self.handlers.get(job.entry)
        if handler is None:
            raise InvalidJob("StubRunner has no handler for this entry")
        try:
            out = handler(dict(job.inputs), dict(job.params), dict(job.blobs))
        except Exception as exc:  # reported the way a jail reports it
            return JailResult(status="error", error=f"{type(exc).__name__}: {exc}")
        try:
            return JailResult(status="ok", **checked(out))
        except OutputRejected as exc:
            return JailResult(status="error", error=f"OutputRejected: {exc}")


def checked(out: Any) -> dict[str, Any]:
    """The same checks as a jail's result frame: dict shape, names, Arrow tables, JSON, bytes."""
    if out is None:
        out = {}
    if not isinstance(out, dict) or not set(out) <= {"tables", "values", "blobs"}:
        raise OutputRejected("the entry must return a dict with keys among tables, values, blobs")
    tables, values, blobs = out.get("tables") or {}, out.get("values") or {}, out.get("blobs") or {}
    if not all(isinstance(part, dict) for part in (tables, values, blobs)):
        raise OutputRejected("tables, values and blobs must be dicts")
    try:
        check_names("output", tables)
        check_names("output", blobs)
    except InvalidJob as exc:
        raise OutputRejected(str(exc)) from exc
    if not all(isinstance(t, pa.Table) for t in tables.values()):
        raise OutputRejected("tables must be pyarrow Tables")
    if not all(isinstance(b, bytes) for b in blobs.values()):
        raise OutputRejected("blobs must be bytes")
    try:
        values = wire.load_json(wire.dump_json(values))
    except (TypeError, ValueError) as exc:
        raise OutputRejected("values must be JSON") from exc
    return {
        "tables": {name: decode_table(wire.ipc_bytes(t)) for name, t in tables.items()},
        "values": values,
        "blobs": dict(blobs),
    }
