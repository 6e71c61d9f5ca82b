"""The daily score counts: read, decided on and bumped in one transaction, per bank and day."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from policies.decisions import Decision
from saferoom.scoring import ScoreLedger
from saferoom.state import StateStore

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 11:00 city time


def capped(limit: int):
    def decide(subjects: list[str], today: Mapping[str, int]) -> list[Decision]:
        return [Decision.allow() if today.get(s, 0) < limit else
                Decision.deny("threshold_exceeded", "cap") for s in subjects]
    return decide


def counts(state: StateStore, bank: str) -> dict[str, int]:
    return dict(state.query("SELECT subject, sum(n) FROM score_counts WHERE bank_id = ? "
                            "GROUP BY subject", [bank]))


def test_first_and_repeated_scores_in_one_batch_are_counted(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.duckdb")
    ledger = ScoreLedger(state)
    ledger.judge("b1", ["a", "b"], NOW, capped(2))
    # "a" and "b" again, "c" and "d" for the first time, in one batch.
    decided = ledger.judge("b1", ["c", "a", "d", "b"], NOW, capped(2))
    assert [d.allowed for d in decided] == [True] * 4
    assert counts(state, "b1") == {"a": 2, "b": 2, "c": 1, "d": 1}
    decided = ledger.judge("b1", ["a", "e", "c"], NOW, capped(2))
    assert [d.code for d in decided] == ["threshold_exceeded", None, None]
    assert counts(state, "b1") == {"a": 2, "b": 2, "c": 2, "d": 1, "e": 1}
    # Another bank, and the next day in city time, count from zero.
    ledger.judge("b2", ["a"], NOW, capped(2))
    assert counts(state, "b2") == {"a": 1}
    assert [d.allowed for d in ledger.judge("b1", ["a"], NOW + timedelta(days=1), capped(2))] == [True]
    assert state.query("SELECT n FROM score_counts WHERE bank_id = 'b1' AND subject = 'a' "
                       "ORDER BY day") == [(2,), (1,)]
    state.close()


def test_a_failing_decision_counts_nothing(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.duckdb")
    ledger = ScoreLedger(state)
    ledger.judge("b1", ["a"], NOW, capped(3))

    def broken(subjects: list[str], today: Mapping[str, int]) -> list[Decision]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        ledger.judge("b1", ["a", "b"], NOW, broken)
    assert counts(state, "b1") == {"a": 1}
    state.close()
