"""The audit log on disk: durable hash-chained appends, signed checkpoints, indexed reads.

`events.jsonl` holds one canonical event per line; `checkpoints.jsonl` one signed checkpoint.
"""

from __future__ import annotations

import logging
import threading
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate, islice
from pathlib import Path
from types import TracebackType

from audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from audit.errors import AuditCorrupted, AuditError, AuditWriteError
from audit.events import (
    ZERO_HASH,
    AuditEvent,
    EventDraft,
    SubjectBatch,
    canonical_json,
    seal,
    seal_batch,
)
from audit.index import Entry, EventIndex, Query
from audit.jsonl import AppendFile, iter_lines
from audit.merkle import MerkleTree, leaf_hash
from audit.timestamps import format_ts, now_us, parse_ts

__all__ = [
    "CHECKPOINTS_FILE",
    "EVENTS_FILE",
    "AuditCorrupted",
    "AuditError",
    "AuditLog",
    "AuditWriteError",
]

EVENTS_FILE = "events.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"

_log = logging.getLogger(__name__)

#: At most this many events are held at once while the log is read on opening.
_LOAD_RUN = 4096

#: What the log keeps of a sealed batch: each event's hash, stored line and index entry.
_Sealed = tuple[list[str], list[bytes], list[Entry]]
#: Seals a batch given its first seq, its time (µs) and the head it chains to.
_Sealer = Callable[[int, int, str], _Sealed]


def _entry(event: AuditEvent, ts_us: int) -> Entry:
    return event.actor, event.subjects, event.action, event.decision, ts_us


class AuditLog:
    """One process's handle on the log directory; appends, reads and proofs are thread-safe.

    Memory per event: its byte offset, its Merkle hashes and a few index entries (~100 bytes);
    event contents stay on disk and are read by offset.
    """

    def __init__(
        self, directory: Path, signer: Signer | None = None, checkpoint_every: int = 256
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self._lock = threading.Lock()
        self._signer = signer
        self._every = checkpoint_every
        self._tree = MerkleTree()
        self._index = EventIndex()
        self._offsets = array("q")  # start of event seq at [seq - 1]
        self._checkpoints: list[Checkpoint] = []
        self._head = ZERO_HASH
        self._size = 0
        self._last_ts_us = 0
        self._closed = False
        #: Bytes of an unfinished last line (a write that was never acknowledged) cut on open.
        self.torn_bytes = 0
        self._events, self._checkpoint_file = self._open_files(directory)
        try:
            self._load_events()
            self._load_checkpoints()
        except OSError as exc:
            self._close_files()
            raise AuditWriteError("could not read the audit log") from exc
        except BaseException:
            self._close_files()
            raise

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def _open_files(directory: Path) -> tuple[AppendFile, AppendFile]:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            events = AppendFile(directory / EVENTS_FILE, exclusive=True)
        except BlockingIOError as exc:
            raise AuditWriteError("the audit log is open in another process") from exc
        except OSError as exc:
            raise AuditWriteError("could not open the audit log") from exc
        try:
            return events, AppendFile(directory / CHECKPOINTS_FILE)
        except OSError as exc:
            events.close()
            raise AuditWriteError("could not open the audit checkpoints") from exc

    def _load_events(self) -> None:
        # Only the stored hashes are chained here (recomputing them is verify_log's job);
        # that is enough to refuse extending a broken chain. Committed in runs, as appends
        # are: in memory, a run costs less than its events one by one.
        run: list[AuditEvent] = []
        offsets: list[int] = []
        entries: list[Entry] = []
        head, size = self._head, self._size
        for line in iter_lines(self._events.path):
            if not line.terminated:
                self._drop_torn_tail(self._events, line.offset)
                break
            seq = size + 1
            try:
                event = AuditEvent.from_json(line.data)
                ts_us = parse_ts(event.ts)
            except ValueError:
                raise AuditCorrupted(f"event {seq}: not a well-formed event") from None
            if event.seq != seq:
                raise AuditCorrupted(f"event {seq}: sequence number out of place")
            if event.prev_hash != head:
                raise AuditCorrupted(f"event {seq}: does not chain to event {seq - 1}")
            run.append(event)
            offsets.append(line.offset)
            entries.append(_entry(event, ts_us))
            head, size = event.hash, seq
            self._last_ts_us = max(self._last_ts_us, ts_us)
            if len(run) == _LOAD_RUN:
                self._commit(run[0].seq, [e.hash for e in run], entries, offsets)
                run, offsets, entries = [], [], []
        if run:
            self._commit(run[0].seq, [e.hash for e in run], entries, offsets)

    def _load_checkpoints(self) -> None:
        for number, line in enumerate(iter_lines(self._checkpoint_file.path), 1):
            if not line.terminated:
                self._drop_torn_tail(self._checkpoint_file, line.offset)
                break
            try:
                cp = Checkpoint.from_json(line.data)
            except ValueError:
                raise AuditCorrupted(f"checkpoint {number}: not a well-formed checkpoint") from None
            # Checkpoints are written only after the events they cover are durable, so a
            # log shorter than, or different from, a checkpoint was cut or rewritten.
            if cp.size > self._size:
                raise AuditCorrupted(
                    f"the log has {self._size} events but checkpoint {number} covers {cp.size}"
                )
            if self._tree.root(cp.size).hex() != cp.root:
                raise AuditCorrupted(f"the log does not match checkpoint {number} (size {cp.size})")
            self._checkpoints.append(cp)

    def _drop_torn_tail(self, file: AppendFile, offset: int) -> None:
        self.torn_bytes += file.end - offset
        file.truncate(offset)
        _log.warning("audit: dropped an unfinished last line of %s", file.path.name)

    def _commit(
        self, first_seq: int, hashes: Sequence[str], entries: Sequence[Entry],
        offsets: Sequence[int],
    ) -> None:
        """Advance the in-memory state over durable events `first_seq`, ...; size moves
        last, for readers.

        In bulk (the tree and the index grow once per batch): per-event steps cost a
        10,000-event batch more than sealing it.
        """
        self._offsets.extend(offsets)
        self._tree.extend([leaf_hash(bytes.fromhex(h)) for h in hashes])
        self._index.add_many(first_seq, entries)
        self._head = hashes[-1]
        self._size = first_seq + len(hashes) - 1

    # -- writing ---------------------------------------------------------------------------

    def append(self, drafts: Sequence[EventDraft]) -> list[AuditEvent]:
        """Seal and durably write `drafts` as one batch; returns them once fsync has returned.

        Raises AuditWriteError (and nothing changes) if the write or fsync fails, and
        ValueError for a draft that cannot be encoded.
        """
        events: list[AuditEvent] = []
        if not drafts:
            return events

        def seal_drafts(seq: int, ts_us: int, prev: str) -> _Sealed:
            ts = format_ts(ts_us)
            lines: list[bytes] = []
            for number, draft in enumerate(drafts, seq):
                event, line = seal(draft, seq=number, ts=ts, prev_hash=prev)
                events.append(event)
                lines.append(line)
                prev = event.hash
            return [e.hash for e in events], lines, [_entry(e, ts_us) for e in events]

        self._write(seal_drafts)
        return events

    def append_per_subject(self, batch: SubjectBatch) -> range:
        """`append(batch.drafts())`, byte for byte, without a draft or an event object per
        subject; returns the seqs written. See append.

        Its shared fields were validated when the batch was made, so only the per-subject
        fields cost anything per event.
        """
        if not batch.rows:
            return range(self._size + 1, self._size + 1)

        def seal_rows(seq: int, ts_us: int, prev: str) -> _Sealed:
            hashes, lines = seal_batch(batch, seq=seq, ts=format_ts(ts_us), prev_hash=prev)
            actor, action = batch.actor, batch.action
            entries: list[Entry] = [(actor, (subject,), action, decision, ts_us)
                                    for subject, decision, _, _ in batch.rows]
            return hashes, lines, entries

        first = self._write(seal_rows)
        return range(first, first + len(batch.rows))

    def _write(self, seal_all: _Sealer) -> int:
        """Seal (`seal_all(first seq, ts_us, prev_hash)`) under the lock, write, fsync, commit;
        returns the first seq written."""
        with self._lock:
            self._check_writable()
            # Never earlier than the last event: seq order is the truth, and time-range
            # queries bisect on it. A clock stepping back only holds time still for a while.
            ts_us = max(now_us(), self._last_ts_us)
            first = self._size + 1
            hashes, lines, entries = seal_all(first, ts_us, self._head)
            try:
                offset = self._events.append(b"".join(lines))
            except OSError as exc:
                raise AuditWriteError("could not write the audit log") from exc
            offsets = list(accumulate((len(line) for line in lines[:-1]), initial=offset))
            self._commit(first, hashes, entries, offsets)
            self._last_ts_us = ts_us
            if self._signer is not None and self._size - self._checkpointed() >= self._every:
                self._periodic_checkpoint()
            return first

    def _periodic_checkpoint(self) -> None:
        # The events are already durable and acknowledged; a failed checkpoint must not
        # disown them. The condition still holds, so the next append tries again.
        try:
            self._write_checkpoint()
        except AuditWriteError:
            _log.warning("audit: checkpoint at size %d not written; will retry", self._size)

    def checkpoint(self) -> Checkpoint:
        """Sign the current size and root now, and store the checkpoint durably."""
        with self._lock:
            self._check_writable()
            return self._write_checkpoint()

    def _write_checkpoint(self) -> Checkpoint:
        if self._signer is None:
            raise AuditError("no signing key is configured for audit checkpoints")
        cp = sign_checkpoint(self._signer, self._size, self._tree.root().hex(), format_ts(now_us()))
        try:
            self._checkpoint_file.append(canonical_json(cp.to_dict()) + b"\n")
        except OSError as exc:
            raise AuditWriteError("could not write an audit checkpoint") from exc
        self._checkpoints.append(cp)
        return cp

    def _checkpointed(self) -> int:
        return self._checkpoints[-1].size if self._checkpoints else 0

    def _check_writable(self) -> None:
        if self._closed:
            raise AuditWriteError("the audit log is closed")
        if self._events.closed or self._checkpoint_file.closed:
            raise AuditWriteError("the audit log failed to roll back a write; reopen it")

    def close(self) -> None:
        """Write a final checkpoint covering any events since the last one, then close."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._signer is not None and self._size > self._checkpointed():
                    self._write_checkpoint()
            finally:
                self._close_files()

    def _close_files(self) -> None:
        self._events.close()
        self._checkpoint_file.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    @property
    def head(self) -> str:
        """Hash of the last event, or 64 zeros for an empty log."""
        return self._head

    def root(self, size: int | None = None) -> str:
        """Merkle root (hex) of the first `size` events; the current root by default."""
        with self._lock:
            return self._tree.root(size).hex()

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[str]:
        """RFC 9162 proof (hex) that the log at `old_size` is a prefix of it at `new_size`
        (the current size by default). Raises ValueError for sizes outside the log."""
        with self._lock:
            return [h.hex() for h in self._tree.consistency_proof(old_size, new_size)]

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[str]:
        """RFC 9162 proof (hex) that event `seq` is in the log of `size` events."""
        with self._lock:
            return [h.hex() for h in self._tree.inclusion_proof(seq - 1, size)]

    def checkpoints(self) -> list[Checkpoint]:
        with self._lock:
            return list(self._checkpoints)

    def events(
        self,
        *,
        actor: str | None = None,
        subject: str | None = None,
        action: str | None = None,
        decision: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Events matching every given filter, in seq order, after the cursor `after_seq`.

        `since` is inclusive and `until` exclusive (ISO 8601; no zone means UTC); a bad
        time raises ValueError. Filters run on the in-memory indexes, and only the events
        returned are read from disk.
        """
        if limit <= 0:
            return []
        query = Query(
            actor=actor,
            subject=subject,
            action=action,
            decision=decision,
            since_us=parse_ts(since) if since is not None else None,
            until_us=parse_ts(until) if until is not None else None,
        )
        # The indexes only grow, so searching a snapshot of the size needs no lock.
        size = self._size
        seqs = list(islice(self._index.search(query, after_seq=after_seq, size=size), limit))
        return self._read(seqs)

    def get(self, seq: int) -> AuditEvent:
        """The event with sequence number `seq`; ValueError if there is none."""
        if not 1 <= seq <= self._size:
            raise ValueError("no such event")
        return self._read([seq])[0]

    def _read(self, seqs: list[int]) -> list[AuditEvent]:
        if not seqs:
            return []
        with self._lock:
            if self._events.closed:
                raise AuditWriteError("the audit log is closed")
            spans = [(seq, self._offsets[seq - 1], self._end_of(seq)) for seq in seqs]
        # Neighbouring events are read with one pread.
        runs: list[list[tuple[int, int, int]]] = []
        for span in spans:
            if runs and runs[-1][-1][2] == span[1]:
                runs[-1].append(span)
            else:
                runs.append([span])
        out: list[AuditEvent] = []
        for run in runs:
            start = run[0][1]
            try:
                block = self._events.read(start, run[-1][2] - start)
            except OSError as exc:
                raise AuditWriteError("could not read the audit log") from exc
            for seq, lo, hi in run:
                try:
                    out.append(AuditEvent.from_json(block[lo - start : hi - start]))
                except ValueError:
                    raise AuditCorrupted(f"event {seq}: changed on disk while open") from None
        return out

    def _end_of(self, seq: int) -> int:
        return self._offsets[seq] if seq < len(self._offsets) else self._events.end
