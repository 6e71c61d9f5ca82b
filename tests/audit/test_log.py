"""AuditLog on real files: chaining, checkpoints, proofs, queries, reopen, and write failures."""

from __future__ import annotations

import errno
import itertools
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import audit.log
from audit.checkpoint import verify_checkpoint
from audit.errors import AuditCorrupted, AuditError, AuditWriteError
from audit.events import ZERO_HASH, AuditEvent, SubjectBatch, record_hash
from audit.log import CHECKPOINTS_FILE, EVENTS_FILE, AuditLog
from audit.merkle import leaf_hash, root, verify_consistency, verify_inclusion
from audit.timestamps import format_ts, parse_ts
from audit.verify import verify_log
from tests.audit.helpers import SIGNER, draft, read_records, rehash, write_log, write_records


def leaves_of(events: list[AuditEvent]) -> list[bytes]:
    return [leaf_hash(bytes.fromhex(e.hash)) for e in events]


def test_append_seals_a_chain(tmp_path):
    with AuditLog(tmp_path) as log:
        assert (log.size, log.head, log.root()) == (0, ZERO_HASH, root([]).hex())
        first = log.append([draft(1), draft(2)])
        second = log.append([draft(3)])
    events = first + second
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == ZERO_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    for event in events:
        assert record_hash(event.to_dict()) == event.hash
        assert event.ts.endswith("Z")
        assert len(event.ts) == len("2026-11-29T23:50:01.123456Z")
    # One batch, one instant; time never runs backwards along seq.
    assert events[0].ts == events[1].ts <= events[2].ts
    assert read_records(tmp_path) == [e.to_dict() for e in events]
    assert log.append([]) == []


def test_reopen_continues_the_chain(tmp_path):
    with AuditLog(tmp_path) as log:
        old = log.append([draft(i) for i in range(5)])
        head, old_root = log.head, log.root()
    with AuditLog(tmp_path) as log:
        assert (log.size, log.head, log.root()) == (5, head, old_root)
        (new,) = log.append([draft(6)])
        assert (new.seq, new.prev_hash) == (6, head)
        assert log.get(3) == old[2]
    assert verify_log(tmp_path).ok


def test_root_and_proofs_match_the_tree(tmp_path):
    with AuditLog(tmp_path) as log:
        events = log.append([draft(i) for i in range(37)])
        leaves = leaves_of(events)
        for m in range(38):
            assert log.root(m) == root(leaves[:m]).hex()
        for m in range(1, 38):
            proof = [bytes.fromhex(h) for h in log.consistency_proof(m)]
            assert verify_consistency(m, 37, root(leaves[:m]), root(leaves), proof)
            proof = [bytes.fromhex(h) for h in log.consistency_proof(m, 30)] if m <= 30 else []
            if m <= 30:
                assert verify_consistency(m, 30, root(leaves[:m]), root(leaves[:30]), proof)
        proof = [bytes.fromhex(h) for h in log.inclusion_proof(9)]
        assert verify_inclusion(8, 37, leaves[8], root(leaves), proof)
        with pytest.raises(ValueError):
            log.root(38)
        with pytest.raises(ValueError):
            log.consistency_proof(38)


def test_checkpoints_every_n_and_on_close(tmp_path):
    log = AuditLog(tmp_path, SIGNER, checkpoint_every=10)
    for i in range(25):
        log.append([draft(i)])
    assert [cp.size for cp in log.checkpoints()] == [10, 20]
    log.append([draft(i) for i in range(30)])  # one checkpoint per batch, at its end
    assert [cp.size for cp in log.checkpoints()] == [10, 20, 55]
    log.append([draft(1)])
    log.close()
    log.close()  # idempotent
    with AuditLog(tmp_path, SIGNER) as reopened:
        checkpoints = reopened.checkpoints()
        assert [cp.size for cp in checkpoints] == [10, 20, 55, 56]
        for cp in checkpoints:
            assert verify_checkpoint(cp)
            assert cp.root == reopened.root(cp.size)
            assert cp.public_key == SIGNER.public_key.hex()
        cp = reopened.checkpoint()
        assert (cp.size, cp.root) == (56, reopened.root())
    # Nothing new since the explicit checkpoint: close adds none.
    with AuditLog(tmp_path) as reopened:
        assert [c.size for c in reopened.checkpoints()][-2:] == [56, 56]


def test_checkpoint_needs_a_signer(tmp_path):
    with AuditLog(tmp_path) as log, pytest.raises(AuditError, match="signing key"):
        log.checkpoint()


def test_closed_log_refuses_appends(tmp_path):
    log = AuditLog(tmp_path)
    log.close()
    with pytest.raises(AuditWriteError, match="closed") as info:
        log.append([draft(1)])
    assert info.value.code == "audit_unavailable"


def test_one_process_at_a_time(tmp_path):
    with AuditLog(tmp_path), pytest.raises(AuditWriteError, match="another process"):
        AuditLog(tmp_path)
    AuditLog(tmp_path).close()  # released on close


def test_files_are_private(tmp_path):
    AuditLog(tmp_path / "audit", SIGNER).close()
    assert (tmp_path / "audit" / EVENTS_FILE).stat().st_mode & 0o077 == 0
    assert (tmp_path / "audit" / CHECKPOINTS_FILE).stat().st_mode & 0o077 == 0


# --- queries ---------------------------------------------------------------------------------


def brute_force(
    events: list[AuditEvent],
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
    out = [
        e
        for e in events
        if e.seq > after_seq
        and (actor is None or e.actor == actor)
        and (subject is None or subject in e.subjects)
        and (action is None or e.action == action)
        and (decision is None or e.decision == decision)
        and (since is None or parse_ts(e.ts) >= parse_ts(since))
        and (until is None or parse_ts(e.ts) < parse_ts(until))
    ]
    return out[:limit]


def test_queries_match_a_brute_force_filter(tmp_path):
    rng = random.Random(7)
    subjects = [f"S{i}" for i in range(6)]
    with AuditLog(tmp_path) as log:
        events: list[AuditEvent] = []
        for batch in range(12):
            drafts = [
                draft(
                    i,
                    actor=rng.choice(["a", "b", "c", None]),
                    subjects=tuple(rng.sample(subjects, rng.randint(0, 3))),
                    action=rng.choice(["query", "verify"]),
                    decision=rng.choice(["allow", "deny"]),
                )
                for i in range(rng.randint(1, 20))
            ]
            events += log.append(drafts)
            if batch % 3 == 0:
                time.sleep(0.002)
        times = sorted({e.ts for e in events})
        for _ in range(300):
            query: dict[str, Any] = {
                "actor": rng.choice([None, "a", "b", "nobody"]),
                "subject": rng.choice([None, *subjects]),
                "action": rng.choice([None, "query", "verify"]),
                "decision": rng.choice([None, "allow", "deny"]),
                "since": rng.choice([None, *times]),
                "until": rng.choice([None, *times]),
                "after_seq": rng.randint(0, len(events)),
                "limit": rng.randint(1, 40),
            }
            assert log.events(**query) == brute_force(events, **query), query


def test_cursor_pages_through_a_subject_history(tmp_path):
    with AuditLog(tmp_path) as log:
        log.append([draft(i, subjects=("ME",) if i % 7 == 0 else ("OTHER",)) for i in range(200)])
        pages, cursor = [], 0
        while page := log.events(subject="ME", after_seq=cursor, limit=4):
            pages.append(page)
            cursor = page[-1].seq
        seqs = [e.seq for page in pages for e in page]
        assert seqs == [i + 1 for i in range(200) if i % 7 == 0]
        assert all(len(page) <= 4 for page in pages)
        assert log.events(limit=0) == []


def test_time_bounds_accept_offsets_and_reject_garbage(tmp_path):
    with AuditLog(tmp_path) as log:
        (event,) = log.append([draft(1)])
        moment = parse_ts(event.ts)
        assert log.events(since="1970-01-01T08:00:00+08:00") == [event]
        assert log.events(until=event.ts) == []
        assert log.events(since=event.ts, until="9999-01-01T00:00:00") == [event]
        assert format_ts(moment) == event.ts
        with pytest.raises(ValueError):
            log.events(since="yesterday")


def test_ten_thousand_event_batches(tmp_path):
    with AuditLog(tmp_path, SIGNER) as log:
        for _ in range(3):
            events = log.append([draft(i) for i in range(10_000)])
            assert len(events) == 10_000
        assert log.size == 30_000
        assert [e.seq for e in log.events(actor="bank-1", after_seq=29_990)] == [
            s for s in range(29_991, 30_001) if (s - 1) % 10_000 % 3 == 1
        ]
    with AuditLog(tmp_path) as log:
        assert log.size == 30_000
    assert verify_log(tmp_path).ok


def test_concurrent_appends_keep_one_chain(tmp_path):
    log = AuditLog(tmp_path, SIGNER, checkpoint_every=17)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(40):
                log.append([draft(n * 100 + i)] * (1 + i % 3))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert not errors
    total = 6 * sum(1 + i % 3 for i in range(40))
    assert [r["seq"] for r in read_records(tmp_path)] == list(range(1, total + 1))
    assert verify_log(tmp_path).ok


# --- per-subject batches --------------------------------------------------------------------

MIXED = [
    SubjectBatch(
        actor="银行-1",
        role="bank",
        action="score",
        resource='模型 "v2"\\',
        purpose="授信 credit\n",
        rows=[
            ("91110000710939135X", "allow", None, "ab" * 32),
            ("企业\u2028名称", "deny", "no_consent", None),
            ("emoji 🚀 \x00 \t", "allow", "原因", ""),
            ("91110000710939135X", "deny", None, "cd" * 32),
            ("", "allow", "", None),
        ],
    ),
    SubjectBatch(
        actor=None,
        role=None,
        action="verify",
        resource=None,
        purpose=None,
        rows=[(f"S{i % 3}", "allow" if i % 2 else "deny", None, None) for i in range(7)],
        epsilon=0.5,
    ),
    SubjectBatch(actor="a", role="bank", action="score", resource=None, purpose="p", rows=[]),
]


def fixed_clock(monkeypatch) -> None:
    """The same times for every run: two logs fed the same appends write the same bytes."""
    ticks = itertools.count(1_800_000_000_000_000, 1_000)
    monkeypatch.setattr(audit.log, "now_us", lambda: next(ticks))


QUERIES: list[dict[str, Any]] = [
    {"subject": "91110000710939135X"},
    {"subject": "企业\u2028名称"},
    {"subject": ""},
    {"subject": "S1"},
    {"actor": "银行-1"},
    {"actor": "bank-1"},
    {"action": "verify"},
    {"decision": "deny", "after_seq": 4},
    {"since": "2027-01-15T08:00:00.005000Z", "until": "2027-01-15T08:00:00.008000Z"},
]


def write_batches(directory: Path, monkeypatch, *, per_subject: bool) -> dict[str, Any]:
    """The MIXED batches between single events, on a fixed clock; what the log then says."""
    fixed_clock(monkeypatch)
    with AuditLog(directory, SIGNER, checkpoint_every=4) as log:
        events = log.append([draft(1), draft(2)])
        for batch in MIXED:
            if per_subject:
                events += [log.get(seq) for seq in log.append_per_subject(batch)]
            else:
                events += log.append(batch.drafts())
        events += log.append([draft(3)])
        return {
            "events": events,
            "root": log.root(),
            "answers": [log.events(**query) for query in QUERIES],
            "proofs": [log.inclusion_proof(e.seq) for e in events],
            "reads": [log.get(e.seq) for e in events],
        }


def test_append_per_subject_writes_what_append_writes(tmp_path, monkeypatch):
    fast = write_batches(tmp_path / "fast", monkeypatch, per_subject=True)
    slow = write_batches(tmp_path / "slow", monkeypatch, per_subject=False)
    assert fast == slow
    events = fast["events"]
    assert len(events) == 2 + 5 + 7 + 1
    assert fast["reads"] == events
    assert all(fast["answers"]), "every query finds something"
    for name in (EVENTS_FILE, CHECKPOINTS_FILE):
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "slow" / name).read_bytes()
    assert read_records(tmp_path / "fast") == [e.to_dict() for e in events]
    assert verify_log(tmp_path / "fast").ok
    with AuditLog(tmp_path / "fast") as reopened:
        assert (reopened.size, reopened.head, reopened.root()) == (
            len(events),
            events[-1].hash,
            fast["root"],
        )
        assert [reopened.events(**query) for query in QUERIES] == fast["answers"]
        assert [cp.size for cp in reopened.checkpoints()] == [7, 14, 15]


def test_a_batch_that_cannot_be_encoded_writes_nothing(tmp_path):
    log = AuditLog(tmp_path, SIGNER, checkpoint_every=1)
    log.append([draft(1)])
    before = (log.size, log.head, log.root(), log.checkpoints(), read_records(tmp_path))
    bad = SubjectBatch(
        actor="a",
        role="bank",
        action="score",
        resource=None,
        purpose=None,
        rows=[("fine", "allow", None, None), ("\ud800", "allow", None, None)],
    )
    with pytest.raises(ValueError):
        log.append_per_subject(bad)
    assert (log.size, log.head, log.root(), log.checkpoints(), read_records(tmp_path)) == before
    assert log.events(subject="fine") == []
    assert log.append_per_subject(
        SubjectBatch(**{**vars_of(bad), "rows": [("fine", "allow", None, None)]})
    ) == range(2, 3)
    log.close()
    assert verify_log(tmp_path).ok


def vars_of(batch: SubjectBatch) -> dict[str, Any]:
    return {name: getattr(batch, name) for name in SubjectBatch.__dataclass_fields__}


def test_reopening_reads_the_log_in_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(audit.log, "_LOAD_RUN", 3)
    with AuditLog(tmp_path, SIGNER, checkpoint_every=5) as log:
        events = log.append([draft(i) for i in range(8)])
        for i in range(4):
            events += log.append([draft(i, subjects=("X", "Y", "X"))])
        events += [log.get(seq) for seq in log.append_per_subject(MIXED[1])]
        queries = [{"subject": "X"}, {"actor": "bank-2"}, {"decision": "deny"}, {"action": "query"}]
        answers = [log.events(**q) for q in queries]
        root_before = log.root()
    with AuditLog(tmp_path, SIGNER) as log:
        assert (log.size, log.head, log.root()) == (len(events), events[-1].hash, root_before)
        assert [log.events(**q) for q in queries] == answers
        assert [log.get(e.seq) for e in events] == events
        for m in range(1, len(events) + 1):
            assert log.root(m) == root(leaves_of(events[:m])).hex()


# --- crashes and failures --------------------------------------------------------------------


def test_torn_last_line_is_cut_on_reopen(tmp_path):
    with AuditLog(tmp_path, SIGNER) as log:
        log.append([draft(i) for i in range(5)])
    path = tmp_path / EVENTS_FILE
    whole = path.read_bytes()
    half = whole.splitlines(keepends=True)[1]
    path.write_bytes(whole + half[: len(half) // 2])  # a crash mid-write
    cps = tmp_path / CHECKPOINTS_FILE
    cps.write_bytes(cps.read_bytes() + b'{"size":')
    report = verify_log(tmp_path)
    assert report.ok and "unfinished" in report.message
    with AuditLog(tmp_path, SIGNER) as log:
        assert log.torn_bytes == len(half) // 2 + len(b'{"size":')
        assert log.size == 5
        assert path.read_bytes() == whole
        (event,) = log.append([draft(6)])
        assert event.seq == 6
    assert verify_log(tmp_path).ok


def test_fsync_failure_raises_and_changes_nothing(tmp_path, monkeypatch):
    log = AuditLog(tmp_path, SIGNER, checkpoint_every=3)
    log.append([draft(1), draft(2)])
    before = (log.size, log.head, log.root(), (tmp_path / EVENTS_FILE).read_bytes())

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(AuditWriteError) as info:
        log.append([draft(3), draft(4)])
    assert info.value.code == "audit_unavailable"
    assert "bank" not in str(info.value)
    assert (log.size, log.head, log.root(), (tmp_path / EVENTS_FILE).read_bytes()) == before
    assert len(log.events()) == 2
    monkeypatch.undo()
    (event,) = log.append([draft(3)])
    assert event.seq == 3
    log.close()
    assert verify_log(tmp_path).ok


def test_partial_write_is_rolled_back(tmp_path, monkeypatch):
    log = AuditLog(tmp_path)
    log.append([draft(1)])
    before = (tmp_path / EVENTS_FILE).read_bytes()
    real_write = os.write
    calls = []

    def disk_fills_up(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills_up)
    with pytest.raises(AuditWriteError):
        log.append([draft(i) for i in range(50)])
    monkeypatch.undo()
    assert (tmp_path / EVENTS_FILE).read_bytes() == before
    assert log.size == 1
    assert [e.seq for e in log.append([draft(2)])] == [2]
    log.close()
    assert verify_log(tmp_path).ok


def test_failed_rollback_fences_the_log_until_reopened(tmp_path, monkeypatch):
    log = AuditLog(tmp_path)
    log.append([draft(1)])
    real_write = os.write

    def half(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:10]))
        raise OSError(errno.EIO, "I/O error")

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", half)
    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(AuditWriteError):
        log.append([draft(2)])
    monkeypatch.undo()
    with pytest.raises(AuditWriteError, match="reopen"):
        log.append([draft(2)])
    log.close()
    with AuditLog(tmp_path) as reopened:
        assert reopened.torn_bytes == 10
        assert [e.seq for e in reopened.append([draft(2)])] == [2]
    assert verify_log(tmp_path).ok


def test_failed_periodic_checkpoint_keeps_the_events_and_retries(tmp_path, monkeypatch):
    log = AuditLog(tmp_path, SIGNER, checkpoint_every=2)

    def broken(data: bytes) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(log._checkpoint_file, "append", broken)
    assert len(log.append([draft(1), draft(2)])) == 2
    assert log.size == 2
    assert log.checkpoints() == []
    monkeypatch.undo()
    log.append([draft(3)])
    assert [cp.size for cp in log.checkpoints()] == [3]
    log.close()


def test_refuses_to_extend_a_broken_chain(tmp_path):
    write_log(tmp_path, 6, every=100)
    records = read_records(tmp_path)
    records[2] = rehash({**records[2], "actor": "someone-else"})
    write_records(tmp_path, records)
    with pytest.raises(AuditCorrupted, match="event 4") as info:
        AuditLog(tmp_path)
    assert info.value.code == "audit_corrupted"
    assert "someone-else" not in str(info.value)


def test_refuses_a_log_behind_its_checkpoints(tmp_path):
    write_log(tmp_path, 12, every=5)
    records = read_records(tmp_path)
    write_records(tmp_path, records[:8])
    with pytest.raises(AuditCorrupted, match="has 8 events but checkpoint 2 covers 10"):
        AuditLog(tmp_path)


def test_refuses_garbage_in_the_middle(tmp_path):
    write_log(tmp_path, 3)
    path = tmp_path / EVENTS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"not json\n" + lines[2])
    with pytest.raises(AuditCorrupted, match="event 2"):
        AuditLog(tmp_path)


def test_unwritable_directory_is_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AuditWriteError, match="open"):
        AuditLog(blocker / "audit")


def test_messages_never_leak_contents(tmp_path):
    secret = "91110000SECRET0000"
    write_log(tmp_path, 3)
    records = read_records(tmp_path)
    records[1]["subjects"] = [secret]
    write_records(tmp_path, records)
    report = verify_log(tmp_path)
    assert not report.ok
    assert secret not in report.message
    assert Path(tmp_path / EVENTS_FILE).exists()
