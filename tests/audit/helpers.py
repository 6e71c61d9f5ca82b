"""Shared builders for audit tests: a fixed signer, drafts, and raw edits of a log on disk.

The raw edits play the attacker: they rewrite the files the way someone with disk access could.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.checkpoint import Checkpoint, Ed25519Signer, Signer, sign_checkpoint
from audit.events import ZERO_HASH, EventDraft, canonical_json, record_hash
from audit.log import CHECKPOINTS_FILE, EVENTS_FILE, AuditLog
from audit.merkle import leaf_hash, root

SIGNER = Ed25519Signer(bytes(range(32)))
ATTACKER = Ed25519Signer(bytes(range(1, 33)))


def draft(i: int, **changes: Any) -> EventDraft:
    fields: dict[str, Any] = {
        "actor": f"bank-{i % 3}",
        "role": "bank",
        "action": ("query", "verify", "consent.grant")[i % 3],
        "resource": "dataset:tax",
        "subjects": (f"9111000071093{i % 5:05d}",),
        "purpose": "credit",
        "decision": "deny" if i % 4 == 0 else "allow",
        "reason": "budget_exhausted" if i % 4 == 0 else None,
        "epsilon": 0.25 if i % 2 else None,
        "digest": f"{i:064x}",
    }
    fields.update(changes)
    return EventDraft(**fields)


def write_log(directory: Path, count: int, *, every: int = 10, signer: Signer = SIGNER) -> None:
    """`count` events appended one at a time, so checkpoints land at multiples of `every`."""
    with AuditLog(directory, signer, checkpoint_every=every) as log:
        for i in range(1, count + 1):
            log.append([draft(i)])


def read_records(directory: Path) -> list[dict[str, Any]]:
    lines = (directory / EVENTS_FILE).read_bytes().splitlines()
    return [json.loads(line) for line in lines]


def write_records(directory: Path, records: list[dict[str, Any]]) -> None:
    data = b"".join(canonical_json(r) + b"\n" for r in records)
    (directory / EVENTS_FILE).write_bytes(data)


def rehash(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "hash": record_hash(record)}


def rechain(records: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    """Renumber and re-hash records[start:] into a valid chain, as a careful forger would."""
    out = list(records[:start])
    prev = out[-1]["hash"] if out else ZERO_HASH
    for position in range(start, len(records)):
        record = rehash({**records[position], "seq": position + 1, "prev_hash": prev})
        out.append(record)
        prev = record["hash"]
    return out


def read_checkpoints(directory: Path) -> list[Checkpoint]:
    lines = (directory / CHECKPOINTS_FILE).read_bytes().splitlines()
    return [Checkpoint.from_dict(json.loads(line)) for line in lines]


def write_checkpoints(directory: Path, checkpoints: list[Checkpoint]) -> None:
    data = b"".join(canonical_json(cp.to_dict()) + b"\n" for cp in checkpoints)
    (directory / CHECKPOINTS_FILE).write_bytes(data)


def resign(records: list[dict[str, Any]], sizes: list[int], signer: Signer) -> list[Checkpoint]:
    """Fresh checkpoints over forged records, signed with `signer`."""
    leaves = [leaf_hash(bytes.fromhex(r["hash"])) for r in records]
    return [
        sign_checkpoint(signer, size, root(leaves[:size]).hex(), "2026-01-01T00:00:00.000000Z")
        for size in sizes
    ]
