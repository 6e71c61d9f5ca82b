"""The service's side of a result frame: structure checked, sizes capped, tables decoded strictly.

Tables must be Arrow IPC, values JSON, blobs bytes; nothing from a jail is ever unpickled here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from sandbox.arrow_check import decode_table
from sandbox.channel import ResultReader
from sandbox.errors import OutputRejected
from sandbox.job import NAME_PATTERN

MAX_PARTS = 256
MAX_ERROR_CHARS = 4000
# The labels the in-jail bootstrap may put on a failure; anything else is dropped.
JAIL_LIMIT_LABELS = frozenset({"memory", "file_size", "disk", "open_files", "processes"})


@dataclass(frozen=True)
class ResultFrame:
    """One decoded answer from a jail: outputs if `ok`, else its error and limit label."""

    ok: bool
    error: str | None = None
    limit: str | None = None
    tables: dict[str, pa.Table] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # as the jail reports it: informational only
    peak_rss_bytes: int = 0


def reported_usage(header: dict[str, Any]) -> dict[str, Any]:
    """The jail's own CPU and RSS figures if well-formed, else zeros (they decide nothing)."""
    raw = header.get("usage")
    cpu = raw.get("cpu_seconds") if isinstance(raw, dict) else None
    rss = raw.get("peak_rss_bytes") if isinstance(raw, dict) else None
    return {
        "cpu_seconds": float(cpu) if isinstance(cpu, int | float) and cpu >= 0 else 0.0,
        "peak_rss_bytes": int(rss) if isinstance(rss, int | float) and rss >= 0 else 0,
    }


def part_list(header: dict[str, Any], key: str) -> list[tuple[str, int]]:
    raw = header.get(key)
    if not isinstance(raw, list) or len(raw) > MAX_PARTS:
        raise OutputRejected(f"result header field {key!r} is malformed")
    parts: list[tuple[str, int]] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2):
            raise OutputRejected(f"result header field {key!r} is malformed")
        name, size = item
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise OutputRejected(f"an output name in {key!r} is not an identifier")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise OutputRejected(f"an output size in {key!r} is not a byte count")
        parts.append((name, size))
    if len({name for name, _ in parts}) != len(parts):
        raise OutputRejected(f"duplicate output names in {key!r}")
    return parts


def read_result(reader: ResultReader) -> ResultFrame:
    """Read and check one result frame (LimitHit and JailEnded pass through)."""
    try:
        header = reader.read_header()
    except (ValueError, RecursionError) as exc:
        raise OutputRejected("the result header is not a JSON frame") from exc
    if not isinstance(header, dict) or not isinstance(header.get("ok"), bool):
        raise OutputRejected("the result header is malformed")
    if not header["ok"]:
        error = header.get("error")
        limit = header.get("limit")
        return ResultFrame(
            ok=False,
            error=error[:MAX_ERROR_CHARS] if isinstance(error, str) else "unknown error",
            limit=limit if limit in JAIL_LIMIT_LABELS else None,
            **reported_usage(header),
        )
    values = header.get("values")
    if not isinstance(values, dict):
        raise OutputRejected("result values must be a JSON object")
    tables = part_list(header, "tables")
    blobs = part_list(header, "blobs")
    return ResultFrame(
        ok=True,
        values=values,
        tables={name: decode_table(reader.read_buffer(size)) for name, size in tables},
        blobs={name: reader.read_bytes(size) for name, size in blobs},
        **reported_usage(header),
    )
