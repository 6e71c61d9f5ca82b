"""verify_log against a real written log that an attacker with disk access then edits.

The log has 30 events with signed checkpoints at 10, 20 and 30; each edit must be caught
and the report must name the first event the verifier can no longer vouch for.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from audit.checkpoint import Checkpoint
from audit.log import AuditLog
from audit.verify import VerifyReport, verify_log
from tests.audit.helpers import (
    ATTACKER,
    SIGNER,
    draft,
    read_checkpoints,
    read_records,
    rechain,
    rehash,
    resign,
    write_checkpoints,
    write_log,
    write_records,
)

TRUSTED = {SIGNER.public_key.hex()}


@pytest.fixture
def log_dir(tmp_path):
    write_log(tmp_path, 30, every=10)
    return tmp_path


@pytest.fixture
def witness(log_dir) -> Checkpoint:
    """The checkpoint an auditor fetched and kept: the one at size 30."""
    return read_checkpoints(log_dir)[-1]


def assert_caught(log_dir: Path, seq: int, phrase: str, **kwargs: Any) -> VerifyReport:
    report = verify_log(log_dir, **kwargs)
    assert not report.ok
    assert report.first_bad_seq == seq, report.message
    assert report.message.startswith(f"event {seq}:"), report.message
    assert phrase in report.message
    return report


def test_intact_log_verifies(log_dir, witness):
    report = verify_log(log_dir, witness, trusted_keys=TRUSTED)
    assert report.ok, report.message
    assert (report.events, report.first_bad_seq) == (30, None)
    with AuditLog(log_dir) as log:
        assert (report.head, report.root) == (log.head, log.root())
    assert report.latest_checkpoint == witness
    assert "30 events verified" in report.message


def test_empty_or_missing_log_verifies(tmp_path):
    assert verify_log(tmp_path / "nothing").ok
    AuditLog(tmp_path, SIGNER).close()
    report = verify_log(tmp_path)
    assert report.ok and report.events == 0 and report.head == "0" * 64


def test_field_changed_without_rehash(log_dir):
    records = read_records(log_dir)
    records[16]["decision"] = "allow" if records[16]["decision"] == "deny" else "deny"
    write_records(log_dir, records)
    report = assert_caught(log_dir, 17, "hash does not match its contents")
    assert report.events == 16


def test_field_changed_and_event_rehashed(log_dir):
    records = read_records(log_dir)
    records[16] = rehash({**records[16], "epsilon": 0.0})
    write_records(log_dir, records)
    assert_caught(log_dir, 17, "prev_hash of event 18")


def test_last_event_changed_and_rehashed_is_caught_by_its_checkpoint(log_dir):
    records = read_records(log_dir)
    records[29] = rehash({**records[29], "actor": "nobody"})
    write_records(log_dir, records)
    # No later event links to it; the signed root at 30 does.
    assert_caught(log_dir, 21, "do not match signed checkpoint 3")


def test_event_deleted(log_dir):
    records = read_records(log_dir)
    del records[16]
    write_records(log_dir, records)
    assert_caught(log_dir, 17, "missing or out of order")


def test_event_inserted(log_dir):
    records = read_records(log_dir)
    fake = rehash({**records[16], "actor": "insider", "prev_hash": records[15]["hash"]})
    write_records(log_dir, [*records[:16], fake, *records[16:]])
    assert_caught(log_dir, 17, "appears again")


def test_event_inserted_and_all_later_renumbered_and_rehashed(log_dir):
    records = read_records(log_dir)
    fake = {**records[20], "actor": "insider"}
    records = rechain([*records[:20], fake, *records[20:]], start=20)
    write_records(log_dir, records)  # a valid chain of 31 events
    assert_caught(log_dir, 21, "do not match signed checkpoint 3")


def test_events_swapped(log_dir):
    records = read_records(log_dir)
    records[16], records[17] = records[17], records[16]
    write_records(log_dir, records)
    assert_caught(log_dir, 17, "missing or out of order")


def test_swapped_renumbered_and_rehashed(log_dir):
    records = read_records(log_dir)
    records[10], records[11] = records[11], records[10]
    write_records(log_dir, rechain(records, start=10))
    assert_caught(log_dir, 11, "events 11..20 do not match signed checkpoint 2")


def test_tail_truncated_behind_the_last_checkpoint(log_dir):
    write_records(log_dir, read_records(log_dir)[:25])
    report = assert_caught(log_dir, 26, "truncated")
    assert "signed checkpoint 3 covers 30" in report.message
    assert report.events == 25


def test_truncated_and_rewritten_tail_caught_by_stored_checkpoint(log_dir):
    records = read_records(log_dir)[:20]
    tail = [{**r, "actor": "insider", "subjects": []} for r in read_records(log_dir)[20:]]
    write_records(log_dir, rechain([*records, *tail], start=20))
    report = assert_caught(log_dir, 21, "history was rewritten")
    assert report.events == 30  # the chain itself is flawless
    assert report.latest_checkpoint is not None and report.latest_checkpoint.size == 20


def test_truncated_and_rewritten_with_checkpoints_removed_needs_the_witness(log_dir, witness):
    records = read_records(log_dir)[:20]
    tail = [{**r, "actor": "insider"} for r in read_records(log_dir)[20:25]]
    write_records(log_dir, rechain([*records, *tail, *tail], start=20))  # 30 events again
    write_checkpoints(log_dir, read_checkpoints(log_dir)[:2])
    # Without a witness, a careful rewrite behind the last stored checkpoint is invisible...
    assert verify_log(log_dir).ok
    # ...with one, it is not.
    report = assert_caught(log_dir, 21, "the witness checkpoint", witness=witness)
    assert "history was rewritten" in report.message


def test_truncated_below_the_witness(log_dir, witness):
    write_records(log_dir, read_records(log_dir)[:24])
    write_checkpoints(log_dir, read_checkpoints(log_dir)[:2])
    assert verify_log(log_dir).ok
    report = assert_caught(log_dir, 25, "the witness checkpoint covers 30", witness=witness)
    assert "truncated" in report.message


def test_witness_from_another_copy(tmp_path):
    # The auditor kept a checkpoint from a copy of the log; the room's copy was then rewritten.
    original, served = tmp_path / "original", tmp_path / "served"
    write_log(original, 15, every=5)
    saved = read_checkpoints(original)[-1]
    write_log(served, 15, every=100)  # same keys, same shape, different content
    assert verify_log(served).ok
    assert_caught(served, 1, "the witness checkpoint", witness=saved)


def test_forged_checkpoint_signature(log_dir):
    checkpoints = read_checkpoints(log_dir)
    sig = checkpoints[1].signature
    checkpoints[1] = dataclasses.replace(
        checkpoints[1], signature=sig[:-2] + f"{int(sig[-2:], 16) ^ 1:02x}"
    )
    write_checkpoints(log_dir, checkpoints)
    report = verify_log(log_dir)
    assert not report.ok
    assert report.first_bad_seq is None
    assert report.message == "checkpoint 2 (size 20): signature does not verify"


def test_checkpoint_root_swapped_for_a_forged_one(log_dir):
    records = rechain([{**r, "actor": "insider"} for r in read_records(log_dir)])
    checkpoints = read_checkpoints(log_dir)
    fake = resign(records, [20], ATTACKER)[0]
    checkpoints[1] = dataclasses.replace(checkpoints[1], root=fake.root)
    write_checkpoints(log_dir, checkpoints)
    assert verify_log(log_dir).message.endswith("signature does not verify")


def test_history_rewritten_and_resigned_with_another_key(log_dir, witness):
    records = rechain([{**r, "actor": "insider"} for r in read_records(log_dir)])
    write_records(log_dir, records)
    write_checkpoints(log_dir, resign(records, [10, 20, 30], ATTACKER))
    # Self-consistent forgery: only a pinned key or a witness tells it apart.
    assert verify_log(log_dir).ok
    report = verify_log(log_dir, trusted_keys=TRUSTED)
    assert not report.ok
    assert report.message == "checkpoint 1 (size 10): signed by a key that is not trusted"
    assert_caught(log_dir, 1, "the witness checkpoint", witness=witness)


def test_forged_witness(log_dir, witness):
    fake = dataclasses.replace(witness, size=29)
    report = verify_log(log_dir, fake)
    assert not report.ok
    assert report.message == "the witness checkpoint's signature does not verify"


def test_witness_larger_than_any_stored_checkpoint_but_log_intact(log_dir):
    with AuditLog(log_dir, SIGNER, checkpoint_every=1000) as log:
        log.append([draft(31)])
        saved = log.checkpoint()
    assert verify_log(log_dir, saved, trusted_keys=TRUSTED).ok


def test_checkpoint_sizes_must_not_shrink(log_dir):
    checkpoints = read_checkpoints(log_dir)
    write_checkpoints(log_dir, [checkpoints[0], checkpoints[2], checkpoints[1]])
    report = verify_log(log_dir)
    assert report.message == "checkpoint 3 (size 20): smaller than the checkpoint before it"


def test_garbage_line(log_dir):
    path = log_dir / "events.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = b"{not json\n"
    path.write_bytes(b"".join(lines))
    assert_caught(log_dir, 5, "not valid JSON")


def test_first_event_must_start_the_chain(log_dir):
    records = read_records(log_dir)
    records[0] = rehash({**records[0], "prev_hash": "1" * 64})
    write_records(log_dir, records)
    assert_caught(log_dir, 1, "prev_hash is not 64 zeros")


def test_schema_is_checked(log_dir):
    records = read_records(log_dir)
    records[3] = rehash({**records[3], "decision": "maybe"})
    write_records(log_dir, records)
    assert_caught(log_dir, 4, "malformed record")


def test_unreadable_log_is_a_failed_verification(tmp_path):
    (tmp_path / "events.jsonl").mkdir()  # a directory where the file should be
    report = verify_log(tmp_path)
    assert not report.ok
    assert report.message.startswith("cannot read events.jsonl")
