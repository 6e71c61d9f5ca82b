"""The trusted first code in every jail: set limits, read the job, call the entry, frame the result.

Runs as `python -I -B -c ...` inside bubblewrap; limits are set before any job code is imported.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import importlib.abc
import importlib.util
import json
import os
import resource
import sys
import traceback
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

USER_CODE_MODULE = "user_code"
MAX_ERROR_CHARS = 2000
RESULT_KEYS = frozenset({"tables", "values", "blobs"})


def apply_rlimits(rlimits: Mapping[str, int]) -> None:
    """Soft and hard limits together, so job code cannot raise them again."""
    for name, value in rlimits.items():
        resource_id = getattr(resource, name)
        # Soft = hard: the bootstrap is the jail's pid 1, for which the kernel drops SIGXCPU,
        # so the CPU limit is the hard limit's SIGKILL, at exactly `value` seconds.
        resource.setrlimit(resource_id, (value, value))


def close_inherited_fds(keep: set[int]) -> None:
    """Belt and braces over bwrap: nothing but stdio and our two pipes survives into job code."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):  # the listing's own fd is already closed
                os.close(fd)


class SourceLoader(importlib.abc.InspectLoader):
    """Loads the bank's source as module `user_code`, keeping the text for tracebacks."""

    def __init__(self, source: str) -> None:
        self.source = source

    def get_source(self, fullname: str) -> str:
        return self.source

    def get_code(self, fullname: str) -> Any:
        return compile(self.source, f"{USER_CODE_MODULE}.py", "exec", dont_inherit=True)


def install_user_code(source: str | None) -> None:
    if source is None:
        return
    spec = importlib.util.spec_from_loader(USER_CODE_MODULE, SourceLoader(source))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[USER_CODE_MODULE] = module
    spec.loader.exec_module(module)


def resolve_entry(entry: str) -> Callable[..., Any]:
    module_name, _, function_name = entry.partition(":")
    module: ModuleType = importlib.import_module(module_name)
    function = getattr(module, function_name)
    if not callable(function):
        raise TypeError(f"{entry} is not callable")
    return function  # type: ignore[no-any-return]


def jail_task_count() -> int:
    """Threads and processes in this jail's pid namespace (what RLIMIT_NPROC counts here)."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):  # exited meanwhile
                count += len(os.listdir(f"/proc/{name}/task"))
    return count


def limit_behind(exc: BaseException, max_processes: int) -> str | None:
    """Which limit an exception from job code means, if any, following its causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return "memory"
        if isinstance(current, OSError):
            if current.errno == errno.EFBIG:
                return "file_size"
            if current.errno == errno.ENOSPC:
                return "disk"
            if current.errno in (errno.EMFILE, errno.ENFILE):
                return "open_files"
            if current.errno == errno.EAGAIN and jail_task_count() * 2 >= max_processes:
                # fork/clone's EAGAIN is RLIMIT_NPROC; the count (racy while a bomb's children
                # come and go) tells it apart from a non-blocking read's EAGAIN.
                return "processes"
        if isinstance(current, RuntimeError) and "can't start new thread" in str(current):
            return "processes"
        current = current.__cause__ or current.__context__
    return None


def usage() -> dict[str, float]:
    """CPU seconds and peak RSS of this jail so far (bwrap's init does not pass them up)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_seconds": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        "peak_rss_bytes": max(own.ru_maxrss, children.ru_maxrss) * 1024,
    }


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


class Jail:
    """One jail's side of the conversation: reads frames from `in_fd`, answers on `out_fd`."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        from . import wire  # after the limits: pyarrow is imported under them

        self.wire = wire
        self.reader = wire.FdReader(int(settings["in"]))
        self.writer = wire.FdWriter(int(settings["out"]))
        self.max_processes = int(settings["rlimits"]["RLIMIT_NPROC"])
        self.pid = os.getpid()

    def send(self, header: dict[str, Any], parts: list[Any]) -> None:
        if os.getpid() != self.pid:
            # Job code forked and the child came back here: only the jail's first process
            # answers, so frames never interleave; the child just ends.
            os._exit(1)
        header["usage"] = usage()
        self.writer.write_all([self.wire.frame_start(header), *parts])

    def send_error(self, exc: BaseException) -> None:
        traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()
        limit = limit_behind(exc, self.max_processes)
        self.send({"ok": False, "error": describe(exc), "limit": limit}, [])

    def send_result(self, out: Any) -> None:
        import pyarrow as pa

        if out is None:
            out = {}
        if not isinstance(out, dict) or not set(out) <= RESULT_KEYS:
            raise TypeError("the entry must return a dict with keys among tables, values, blobs")
        tables = out.get("tables") or {}
        values = out.get("values") or {}
        blobs = out.get("blobs") or {}
        if not isinstance(tables, dict) or not isinstance(values, dict):
            raise TypeError("tables and values must be dicts")
        if not isinstance(blobs, dict):
            raise TypeError("blobs must be a dict")
        table_parts: list[tuple[str, Any]] = []
        for name, table in tables.items():
            if isinstance(table, pa.RecordBatch):
                table = pa.Table.from_batches([table])
            if not isinstance(name, str) or not isinstance(table, pa.Table):
                raise TypeError("tables must map names to pyarrow Tables")
            table_parts.append((name, self.wire.ipc_bytes(table)))
        blob_parts: list[tuple[str, bytes]] = []
        for name, blob in blobs.items():
            if not isinstance(name, str) or not isinstance(blob, bytes | bytearray | memoryview):
                raise TypeError("blobs must map names to bytes")
            blob_parts.append((name, bytes(blob)))
        self.wire.dump_json(values)  # refuse non-JSON values here, with a clear message
        header = {
            "ok": True,
            "values": values,
            "tables": [[name, buf.size] for name, buf in table_parts],
            "blobs": [[name, len(blob)] for name, blob in blob_parts],
        }
        self.send(header, [buf for _, buf in table_parts] + [blob for _, blob in blob_parts])

    def answer(self, call: Callable[[], Any]) -> bool:
        """Run `call` and send its result or its error; False if job code raised."""
        try:
            out = call()
            self.send_result(out)
            return True
        except BaseException as exc:  # everything job code raises is reported, even SystemExit
            self.send_error(exc)
            return False

    def run_once(self) -> int:
        header = self.reader.read_frame_header()
        if header is None:
            return 2
        inputs, blobs = self.reader.read_parts(header["tables"], header["blobs"])
        params = header["params"]
        entry = str(header["entry"])

        def call() -> Any:
            install_user_code(header.get("code"))
            return resolve_entry(entry)(inputs, params, blobs)

        return 0 if self.answer(call) else 1

    def serve(self) -> int:
        """Warm mode: set up once (e.g. load a model), then answer call frames until EOF."""
        header = self.reader.read_frame_header()
        if header is None:
            return 2
        _, blobs = self.reader.read_parts([], header["blobs"])
        handler: list[Callable[..., Any]] = []

        def setup() -> Any:
            install_user_code(header.get("code"))
            made = resolve_entry(str(header["entry"]))(blobs)
            if not callable(made):
                raise TypeError("a warm entry must return the callable that answers each call")
            handler.append(made)
            return {"values": {"ready": True}}

        if not self.answer(setup):
            return 1
        while (request := self.reader.read_frame_header()) is not None:
            inputs, _ = self.reader.read_parts(request["tables"], [])
            self.answer(functools.partial(handler[0], inputs, request["params"]))
        return 0


def preload(modules: list[str]) -> None:
    """Import trusted modules before the job arrives (a spare jail waiting for work). Only
    a head start: a module that fails here fails again, and is reported, when the job imports it."""
    for name in modules:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def main() -> None:
    settings = json.loads(sys.argv[1])
    apply_rlimits(settings["rlimits"])
    os.umask(0o077)
    close_inherited_fds({0, 1, 2, int(settings["in"]), int(settings["out"])})
    sys.dont_write_bytecode = True
    sys.path.insert(1, settings["lib"])
    jail = Jail(settings)
    preload(settings.get("preload") or [])
    code = jail.serve() if settings["mode"] == "serve" else jail.run_once()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: job code's leftover threads or atexit hooks must not hold the
    # jail open once the result is sent.
    os._exit(code)
