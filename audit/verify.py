"""Offline verification of an audit log directory: chain, hashes, checkpoints, witness.

Streams the events once in O(log n) memory; a failure names the first event it cannot vouch for.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from audit.checkpoint import Checkpoint, verify_checkpoint
from audit.events import ZERO_HASH, AuditEvent, record_hash
from audit.jsonl import Line, iter_lines
from audit.log import CHECKPOINTS_FILE, EVENTS_FILE
from audit.merkle import EMPTY_ROOT, Frontier, leaf_hash


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict. On failure `events`, `head` and `root` describe the prefix that verified,
    and `first_bad_seq` is the earliest event not vouched for (None for a bad checkpoint)."""

    ok: bool
    events: int
    head: str
    root: str
    first_bad_seq: int | None
    message: str
    latest_checkpoint: Checkpoint | None


@dataclass(frozen=True, slots=True)
class _Failure:
    seq: int | None
    message: str


@dataclass(frozen=True, slots=True)
class _Target:
    """A signed (size, root) the log must reproduce: a stored checkpoint or the witness."""

    size: int
    root: str
    label: str
    stored: Checkpoint | None
    vouches: bool  # signed by a key the caller trusts, so a match clears the events it covers


def _read_checkpoints(
    path: Path, trusted_keys: Collection[str]
) -> tuple[list[Checkpoint], _Failure | None, int]:
    """The checkpoints that verify, up to the first that does not; plus torn-tail bytes."""
    good: list[Checkpoint] = []
    for number, line in enumerate(iter_lines(path), 1):
        if not line.terminated:
            return good, None, len(line.data)
        name = f"checkpoint {number}"
        try:
            cp = Checkpoint.from_json(line.data)
        except ValueError:
            return good, _Failure(None, f"{name}: not a well-formed checkpoint"), 0
        name = f"{name} (size {cp.size})"
        if not verify_checkpoint(cp):
            return good, _Failure(None, f"{name}: signature does not verify"), 0
        if trusted_keys and cp.public_key not in trusted_keys:
            return good, _Failure(None, f"{name}: signed by a key that is not trusted"), 0
        # A later checkpoint for a shorter log means the log was cut and grown again.
        if good and cp.size < good[-1].size:
            return good, _Failure(None, f"{name}: smaller than the checkpoint before it"), 0
        good.append(cp)
    return good, None, 0


class _Scan:
    """One pass over the event lines, checking each against the chain and the targets."""

    def __init__(self, targets: Iterable[_Target]) -> None:
        self.count = 0
        self.head = ZERO_HASH
        self.frontier = Frontier()
        self.torn = 0
        self.latest: Checkpoint | None = None
        self._targets = sorted(targets, key=lambda t: t.size)
        self._next = 0
        self._vouched = 0  # events up to here match a signed root

    def run(self, lines: Iterable[Line]) -> _Failure | None:
        failure = self._reach_targets()
        if failure:
            return failure
        for line in lines:
            if not line.terminated:
                # A crash mid-write: never acknowledged, so not evidence of tampering.
                self.torn = len(line.data)
                break
            failure = self._check(line) or self._reach_targets()
            if failure:
                return failure
        if self._next < len(self._targets):
            target = self._targets[self._next]
            missing = self.count + 1
            return _Failure(
                missing,
                f"event {missing}: missing; the log ends at event {self.count} but "
                f"{target.label} covers {target.size} events (the log was truncated)",
            )
        return None

    def _check(self, line: Line) -> _Failure | None:
        i = self.count + 1
        try:
            record = json.loads(line.data)
        except ValueError:
            return _Failure(i, f"event {i}: line is not valid JSON")
        if not isinstance(record, dict):
            return _Failure(i, f"event {i}: not an event record")
        seq = record.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool) and seq != i:
            if 1 <= seq < i:
                return _Failure(
                    seq,
                    f"event {seq}: appears again after event {i - 1} "
                    "(duplicated, inserted or reordered)",
                )
            return _Failure(i, f"event {i}: missing or out of order (found seq {seq} in its place)")
        try:
            AuditEvent.from_dict(record)
        except ValueError:
            return _Failure(i, f"event {i}: malformed record")
        if record_hash(record) != record["hash"]:
            return _Failure(i, f"event {i}: hash does not match its contents")
        if record["prev_hash"] != self.head:
            if i == 1:
                return _Failure(1, "event 1: prev_hash is not 64 zeros")
            # Either side of a broken link may be the altered one; name the earlier.
            return _Failure(
                i - 1,
                f"event {i - 1}: its hash is not the prev_hash of event {i} "
                f"(event {i - 1} was changed and re-hashed, or event {i} was altered)",
            )
        self.count = i
        self.head = record["hash"]
        self.frontier.append(leaf_hash(bytes.fromhex(self.head)))
        return None

    def _reach_targets(self) -> _Failure | None:
        # Only roots at smaller sizes narrow a mismatch here: two signed roots disagreeing at
        # one size (a forked history) say nothing about where the forks part.
        first = self._vouched + 1
        while self._next < len(self._targets) and self._targets[self._next].size == self.count:
            target = self._targets[self._next]
            self._next += 1
            if self.frontier.root().hex() != target.root:
                span = (
                    f"events {first}..{target.size} do not"
                    if first < target.size
                    else "it does not"
                )
                return _Failure(
                    first,
                    f"event {first}: {span} match {target.label} "
                    f"(size {target.size}); history was rewritten",
                )
            if target.vouches:
                self._vouched = target.size
            if target.stored is not None:
                self.latest = target.stored
        return None


def verify_log(
    directory: Path, witness: Checkpoint | None = None, *, trusted_keys: Collection[str] = ()
) -> VerifyReport:
    """Verify the log in `directory` offline; never writes.

    Checks every line, the seq run, each hash, the chain, every stored checkpoint (signature,
    and root against the events), truncation behind the last checkpoint, and, with a
    `witness` saved earlier, that the log still has the witness's root at its size. Pass the
    room's public keys (hex) as `trusted_keys` so that re-signed checkpoints are caught too.
    """
    try:
        return _verify(directory, witness, trusted_keys)
    except OSError as exc:
        # An unreadable log is not a verified one; the CLI prints this instead of a trace.
        name = Path(exc.filename).name if exc.filename else "the audit log"
        return VerifyReport(
            False, 0, ZERO_HASH, EMPTY_ROOT.hex(), None, f"cannot read {name}: {exc.strerror}", None
        )


def _verify(
    directory: Path, witness: Checkpoint | None, trusted_keys: Collection[str]
) -> VerifyReport:
    checkpoints, cp_failure, cp_torn = _read_checkpoints(directory / CHECKPOINTS_FILE, trusted_keys)
    witness_failure = None
    if witness is not None and not verify_checkpoint(witness):
        witness_failure = _Failure(None, "the witness checkpoint's signature does not verify")
        witness = None
    # Stored checkpoints must all match, but with pinned keys only theirs narrow the blame:
    # a forger re-signing a rewritten log with their own key must not shift it.
    pinned = set(trusted_keys) | ({witness.public_key} if witness is not None else set())
    targets = [
        _Target(
            cp.size, cp.root, f"signed checkpoint {n}", cp, not pinned or cp.public_key in pinned
        )
        for n, cp in enumerate(checkpoints, 1)
    ]
    if witness is not None:
        targets.append(_Target(witness.size, witness.root, "the witness checkpoint", None, True))
    scan = _Scan(targets)
    failure = scan.run(iter_lines(directory / EVENTS_FILE)) or cp_failure or witness_failure
    root = scan.frontier.root().hex()
    if failure is not None:
        return VerifyReport(
            False, scan.count, scan.head, root, failure.seq, failure.message, scan.latest
        )
    return VerifyReport(
        True,
        scan.count,
        scan.head,
        root,
        None,
        _success_message(scan, witness, cp_torn),
        scan.latest,
    )


def _success_message(scan: _Scan, witness: Checkpoint | None, cp_torn: int) -> str:
    parts = [f"ok: {scan.count} events verified, head {scan.head}"]
    covered = scan.latest.size if scan.latest else 0
    if scan.latest:
        parts.append(f"latest signed checkpoint at size {covered}")
    if covered < scan.count:
        parts.append(f"events {covered + 1}..{scan.count} are not yet covered by a checkpoint")
    if witness is not None:
        parts.append(f"the witness at size {witness.size} matches")
    if scan.torn or cp_torn:
        parts.append("an unfinished last line (a write never acknowledged) was ignored")
    return "; ".join(parts)
