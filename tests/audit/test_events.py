"""Events: draft validation, the api.md shape, and the canonical encoding the chain hashes."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.events import (
    ZERO_HASH,
    AuditEvent,
    EventDraft,
    SubjectBatch,
    canonical_json,
    record_hash,
    seal,
    seal_batch,
)
from tests.audit.helpers import draft

TS = "2026-11-29T23:50:01.123456Z"
API_KEYS = {
    "seq",
    "ts",
    "actor",
    "role",
    "action",
    "resource",
    "subjects",
    "purpose",
    "decision",
    "reason",
    "epsilon",
    "digest",
    "prev_hash",
    "hash",
}

text = st.text(st.characters(codec="utf-8"), max_size=12)
maybe_text = st.none() | text
drafts = st.builds(
    EventDraft,
    actor=maybe_text,
    role=maybe_text,
    action=text.filter(bool),
    resource=maybe_text,
    subjects=st.lists(text, max_size=3).map(tuple),
    purpose=maybe_text,
    decision=st.sampled_from(["allow", "deny"]),
    reason=maybe_text,
    epsilon=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    digest=maybe_text,
)
batches = st.builds(
    SubjectBatch,
    actor=maybe_text,
    role=maybe_text,
    action=text.filter(bool),
    resource=maybe_text,
    purpose=maybe_text,
    rows=st.lists(st.tuples(text, st.sampled_from(["allow", "deny"]), maybe_text, maybe_text)),
    epsilon=st.none() | st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False),
)


def test_canonical_json_is_the_specified_dumps():
    record = {"b": 1, "a": ["中", "x"], "c": None, "d": 0.1}
    expected = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(record) == expected.encode()


@given(drafts, st.integers(1, 10**9))
def test_sealed_line_is_canonical_json_of_the_event(d, seq):
    event, line = seal(d, seq=seq, ts=TS, prev_hash=ZERO_HASH)
    record = event.to_dict()
    assert line == canonical_json(record) + b"\n"
    assert line.count(b"\n") == 1
    unhashed = {k: v for k, v in record.items() if k != "hash"}
    assert event.hash == hashlib.sha256(canonical_json(unhashed)).hexdigest()
    assert event.hash == record_hash(record)
    assert AuditEvent.from_dict(json.loads(line)) == event


def test_event_shape_matches_api_md():
    event, _ = seal(draft(4), seq=1, ts=TS, prev_hash=ZERO_HASH)
    record = event.to_dict()
    assert set(record) == API_KEYS
    assert isinstance(record["subjects"], list)
    assert record["prev_hash"] == "0" * 64
    assert record["decision"] == "deny"


def test_prev_hash_is_inside_the_hash():
    a, _ = seal(draft(1), seq=2, ts=TS, prev_hash="a" * 64)
    b, _ = seal(draft(1), seq=2, ts=TS, prev_hash="b" * 64)
    assert a.hash != b.hash


def test_draft_normalises_and_validates():
    subjects: Any = ["a", "b"]  # callers may pass a list; the draft keeps a tuple
    d = EventDraft(
        actor=None, role=None, action="query", resource=None, subjects=subjects, epsilon=1
    )
    assert d.subjects == ("a", "b")
    assert d.epsilon == 1.0
    assert isinstance(d.epsilon, float)
    with pytest.raises(ValueError, match="decision"):
        EventDraft(actor=None, role=None, action="q", resource=None, decision="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        EventDraft(actor=None, role=None, action="q", resource=None, epsilon=math.nan)
    with pytest.raises(ValueError, match="action"):
        EventDraft(actor=None, role=None, action="", resource=None)
    with pytest.raises(ValueError, match="subjects"):
        EventDraft(actor=None, role=None, action="q", resource=None, subjects=(1,))  # type: ignore[arg-type]


def test_unencodable_text_fails_before_writing():
    with pytest.raises(ValueError):
        seal(draft(1, reason="\ud800"), seq=1, ts=TS, prev_hash=ZERO_HASH)


def test_from_dict_is_strict_and_never_echoes_values():
    event, _ = seal(draft(2), seq=7, ts=TS, prev_hash=ZERO_HASH)
    good = event.to_dict()
    for broken in (
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "ts"},
        {**good, "seq": 0},
        {**good, "seq": True},
        {**good, "decision": "secret-value"},
        {**good, "subjects": "secret-value"},
        {**good, "hash": "secret-value"},
    ):
        with pytest.raises(ValueError) as info:
            AuditEvent.from_dict(broken)
        assert "secret-value" not in str(info.value)


# --- per-subject batches ---------------------------------------------------------------------


def sealed_one_by_one(
    drafts: list[EventDraft], seq: int, prev_hash: str
) -> tuple[list[AuditEvent], list[bytes]]:
    events, lines = [], []
    for number, d in enumerate(drafts, seq):
        event, line = seal(d, seq=number, ts=TS, prev_hash=prev_hash)
        events.append(event)
        lines.append(line)
        prev_hash = event.hash
    return events, lines


@given(batches, st.integers(1, 10**9))
def test_sealed_batch_is_its_drafts_sealed_one_by_one(batch, seq):
    hashes, lines = seal_batch(batch, seq=seq, ts=TS, prev_hash="a" * 64)
    events, one_by_one = sealed_one_by_one(batch.drafts(), seq, "a" * 64)
    assert (hashes, lines) == ([e.hash for e in events], one_by_one)
    for event, line in zip(events, lines, strict=True):
        assert line == canonical_json(event.to_dict()) + b"\n"
        assert AuditEvent.from_json(line) == event


def test_sealed_batch_with_none_and_non_ascii_fields():
    batch = SubjectBatch(
        actor="银行-1",
        role=None,
        action="score",
        resource='模型 "v2"\\',
        purpose=None,
        rows=[
            ("91110000710939135X", "allow", None, "ab" * 32),
            ("企业\u2028名称", "deny", "no_consent", None),
            ("emoji 🚀 \x00 \t", "allow", "原因", ""),
            ("91110000710939135X", "deny", None, None),
        ],
        epsilon=0,
    )
    hashes, lines = seal_batch(batch, seq=3, ts=TS, prev_hash=ZERO_HASH)
    assert lines == sealed_one_by_one(batch.drafts(), 3, ZERO_HASH)[1]
    events = [AuditEvent.from_json(line) for line in lines]
    assert hashes == [e.hash for e in events]
    assert [e.subjects for e in events] == [(subject,) for subject, *_ in batch.rows]
    assert [e.seq for e in events] == [3, 4, 5, 6]
    assert events[0].epsilon == 0.0
    assert "企业".encode() in lines[1]


def test_subject_batch_validates_as_drafts_do():
    shared: dict[str, Any] = {
        "actor": None,
        "role": None,
        "action": "q",
        "resource": None,
        "purpose": None,
    }
    rows: Any = [("s", "allow", None, None)]  # a list is kept as a tuple
    batch = SubjectBatch(**shared, rows=rows, epsilon=1)
    assert batch.rows == (("s", "allow", None, None),)
    assert batch.epsilon == 1.0
    assert isinstance(batch.epsilon, float)
    assert SubjectBatch(**shared, rows=()).drafts() == []
    for change, match in [
        ({"action": ""}, "action"),
        ({"actor": 1}, "actor"),
        ({"role": b"bank"}, "role"),
        ({"resource": 1}, "resource"),
        ({"purpose": 1}, "purpose"),
        ({"epsilon": math.inf}, "finite"),
        ({"epsilon": True}, "epsilon"),
        ({"rows": [(1, "allow", None, None)]}, "subjects"),
        ({"rows": [("s", "maybe", None, None)]}, "decision"),
        ({"rows": [("s", "allow", 1, None)]}, "reason"),
        ({"rows": [("s", "allow", None, b"x")]}, "digest"),
        ({"rows": [("s", "allow", None)]}, "row"),
        ({"rows": ["sxyz"]}, "row"),
    ]:
        with pytest.raises(ValueError, match=match):
            SubjectBatch(**{**shared, "rows": rows, **change})


def test_unencodable_text_in_a_batch_fails_before_writing():
    for row in [("\ud800", "allow", None, None), ("s", "allow", "\udfff", None)]:
        batch = SubjectBatch(
            actor=None, role=None, action="q", resource=None, purpose=None, rows=[row]
        )
        with pytest.raises(ValueError):
            seal_batch(batch, seq=1, ts=TS, prev_hash=ZERO_HASH)
