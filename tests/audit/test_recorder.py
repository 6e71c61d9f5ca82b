"""saferoom.recorder's per-subject events: the batch path writes what one draft per subject would."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import itertools
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import audit.log
from audit.events import AuditEvent, EventDraft
from audit.log import CHECKPOINTS_FILE, EVENTS_FILE, AuditLog
from saferoom.auth import Principal
from saferoom.recorder import (
    Call,
    SubjectRelease,
    _digester,
    digest,
    record_per_subject,
)
from tests.audit.helpers import SIGNER

KEYS = [None, b"", b"k", bytes(range(32)), bytes(64), bytes(range(65)), b"x" * 200]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: json writes them, so digests must agree
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
ODD_VALUES: list[Any] = [
    "中文 \u2028 \x00",
    {"b": 1, "a": [1.5, -0.0, 1e16, math.inf]},
    {10: "int keys", 2: "sorted as numbers"},
    {2.5: "float keys", 1.5: "b"},
    {True: "bool keys", False: "b"},
    {None: "null key"},
    (1, "tuple"),
    {"when": datetime.date(2026, 1, 2), "amount": Decimal("1.10")},  # default=str
    {"uscc": "91110000710939135X", "score": 612, "reasons": ["a", "b"]},
]


@pytest.mark.parametrize("key", KEYS)
def test_digester_is_digest(key):
    sign = _digester(key)
    for value in [*ODD_VALUES, None, 0, [], {}]:
        assert sign(value) == digest(value, key)


@given(json_values, st.sampled_from(KEYS))
def test_digester_is_digest_for_any_release(value, key):
    assert _digester(key)(value) == digest(value, key)


# --- against the per-draft path it replaces ----------------------------------------------------


def record_per_draft(
    call: Call, releases: list[SubjectRelease], *, resource: str, purpose: str
) -> list[AuditEvent]:
    """record_per_subject as it was: one validated draft per subject, then AuditLog.append."""
    p = call.principal
    drafts = [
        EventDraft(
            actor=p.id if p else None,
            role=p.role if p else None,
            action=call.operation,
            resource=resource,
            subjects=(r.subject,),
            purpose=purpose,
            decision=r.decision,
            reason=r.reason,
            digest=digest(r.released, call.digest_key),
        )
        for r in releases
    ]
    events = call.log.append(drafts)
    call.recorded += len(events)
    return events


RELEASES = [
    SubjectRelease("91110000710939135X", "allow", None, {"uscc": "91110000710939135X", "score": 1}),
    SubjectRelease("企业\u2028名称", "deny", "no_consent", None),
    SubjectRelease('emoji 🚀 \\ "', "allow", "原因", ["中", 0.1, None]),
    SubjectRelease("91110000710939135X", "deny", None, {"score": None, "reason": "no_record"}),
    SubjectRelease("", "allow", "", "text"),
]
CALLERS = [
    (Principal("bank-1", "bank", "Bank One"), bytes(range(32))),
    (Principal("银行-2", "bank", "银行"), None),
    (None, b"k"),
]


def write(directory: Path, monkeypatch, record) -> tuple[list[list[AuditEvent]], list[int]]:
    ticks = itertools.count(1_800_000_000_000_000, 1_000)
    monkeypatch.setattr(audit.log, "now_us", lambda: next(ticks))
    returned, recorded = [], []
    with AuditLog(directory, SIGNER, checkpoint_every=3) as log:
        for principal, key in CALLERS:
            call = Call(log, "score", principal, key)
            out = record(call, RELEASES, resource="model:评分", purpose="credit")
            # The batch path returns the seqs it wrote, the per-draft path the events.
            returned.append([log.get(s) for s in out] if isinstance(out, range) else out)
            recorded.append(call.recorded)
        empty = Call(log, "score", *CALLERS[0])
        assert len(record(empty, [], resource="m", purpose="p")) == 0
        assert empty.recorded == 0
    return returned, recorded


def test_record_per_subject_writes_what_a_draft_per_subject_wrote(tmp_path, monkeypatch):
    fast = write(tmp_path / "fast", monkeypatch, record_per_subject)
    slow = write(tmp_path / "slow", monkeypatch, record_per_draft)
    assert fast == slow
    returned, recorded = fast
    assert recorded == [len(RELEASES)] * len(CALLERS)
    assert [len(events) for events in returned] == [len(RELEASES)] * len(CALLERS)
    for name in (EVENTS_FILE, CHECKPOINTS_FILE):
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "slow" / name).read_bytes()
    first = returned[0]
    assert [e.subjects for e in first] == [(r.subject,) for r in RELEASES]
    assert first[1].digest == digest(None, bytes(range(32)))  # a None release is digested too
    assert returned[2][0].actor is None


@pytest.mark.parametrize(
    "bad",
    [
        SubjectRelease("s", "maybe", None, 1),  # type: ignore[arg-type]
        SubjectRelease(5, "allow", None, 1),  # type: ignore[arg-type]
        SubjectRelease("s", "allow", 7, 1),  # type: ignore[arg-type]
        SubjectRelease("\ud800", "allow", None, 1),
        SubjectRelease("s", "allow", None, {1: "a", "b": 2}),
    ],
)
def test_a_bad_release_records_nothing(tmp_path, bad):
    with AuditLog(tmp_path) as log:
        log.append([EventDraft(actor=None, role=None, action="start", resource=None)])
        before = (log.size, log.head, (tmp_path / EVENTS_FILE).read_bytes())
        call = Call(log, "score", CALLERS[0][0], b"k")
        with pytest.raises((ValueError, TypeError)):
            record_per_subject(call, [RELEASES[0], bad], resource="m", purpose="p")
        assert (log.size, log.head, (tmp_path / EVENTS_FILE).read_bytes()) == before
        assert call.recorded == 0


@settings(max_examples=300)
@given(json_values)
def test_digest_is_of_the_canonical_json(value):
    body = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    assert digest(value) == hashlib.sha256(body.encode()).hexdigest()


@pytest.mark.parametrize("value", ODD_VALUES)
def test_odd_releases_digest_their_canonical_json(value):
    body = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    assert digest(value, b"k") == hmac.new(b"k", body.encode(), "sha256").hexdigest()
