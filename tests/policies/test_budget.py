"""Budgets are exact and never overdrawn, whatever the sequence of spends; periods roll exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.budget import (
    CITY_TIME,
    BudgetLimits,
    BudgetState,
    Epsilon,
    Period,
    decide_spend,
    period_of,
)
from policies.documents import AggregatePolicy


def _state(per_bank: int, total: int, by_bank: int = 0, by_all: int = 0) -> BudgetState:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    return BudgetState("tax_annual", BudgetLimits(Epsilon(per_bank), Epsilon(total), "month"),
                       Period(now, now), Epsilon(by_bank), Epsilon(by_all))


def test_epsilon_is_exact() -> None:
    assert Epsilon.parse(0.1) + Epsilon.parse(0.2) == Epsilon.parse(0.3)
    assert Epsilon.parse("1.000001").micro == 1_000_001
    assert Epsilon.parse(Decimal("3")).value == Decimal(3)
    for bad in (float("nan"), float("inf"), -1, "abc", True, 1e-7, 0.1234567):
        with pytest.raises(ValueError):
            Epsilon.parse(bad)


def test_split_never_adds_up_to_more() -> None:
    e = Epsilon.parse(1)
    assert e.split(3).micro * 3 <= e.micro


@given(
    per_bank=st.integers(1, 10_000_000),
    factor=st.integers(1, 5),
    spends=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3_000_000)), max_size=60),
)
def test_spends_never_overdraw(per_bank: int, factor: int, spends: list[tuple[int, int]]) -> None:
    """Four banks share one dataset; each bank and the total stay within their limits."""
    total = per_bank * factor
    by_bank = [0, 0, 0, 0]
    for bank, micro in spends:
        state = _state(per_bank, total, by_bank[bank], sum(by_bank))
        if decide_spend([state], Epsilon(micro)).allowed:
            by_bank[bank] += micro
        assert all(b <= per_bank for b in by_bank)
        assert sum(by_bank) <= total


@given(st.integers(0, 5_000_000), st.integers(0, 5_000_000), st.integers(1, 5_000_000))
def test_all_datasets_must_afford_it(left_a: int, left_b: int, spend: int) -> None:
    a = _state(5_000_000, 50_000_000, 5_000_000 - left_a, 5_000_000 - left_a)
    b = _state(5_000_000, 50_000_000, 5_000_000 - left_b, 5_000_000 - left_b)
    decision = decide_spend([a, b], Epsilon(spend))
    assert decision.allowed == (spend <= min(left_a, left_b))
    if not decision.allowed:
        assert decision.code == "budget_exhausted"


def test_zero_and_oversized_spends_are_refused() -> None:
    assert decide_spend([_state(10**9, 10**9)], Epsilon(0)).code == "query_not_allowed"
    assert decide_spend([_state(10**9, 10**9)], Epsilon.parse(11)).code == "query_not_allowed"


def test_default_total_is_three_banks_worth() -> None:
    policy = AggregatePolicy(purposes=["credit_research"], functions=["count"],
                             epsilon_per_period=1.5)
    limits = BudgetLimits.of(policy)
    assert limits.per_bank == Epsilon.parse(1.5) and limits.total == Epsilon.parse(4.5)


@pytest.mark.parametrize(
    ("kind", "local", "start", "end"),
    [
        ("day", datetime(2026, 3, 31, 23, 59), datetime(2026, 3, 31), datetime(2026, 4, 1)),
        ("week", datetime(2026, 12, 2, 8), datetime(2026, 11, 30), datetime(2026, 12, 7)),
        ("month", datetime(2026, 12, 31, 23, 59, 59), datetime(2026, 12, 1), datetime(2027, 1, 1)),
        ("quarter", datetime(2026, 11, 5), datetime(2026, 10, 1), datetime(2027, 1, 1)),
        ("quarter", datetime(2026, 2, 5), datetime(2026, 1, 1), datetime(2026, 4, 1)),
        ("year", datetime(2026, 6, 1), datetime(2026, 1, 1), datetime(2027, 1, 1)),
    ],
)
def test_periods_in_city_time(kind: str, local: datetime, start: datetime, end: datetime) -> None:
    p = period_of(kind, local.replace(tzinfo=CITY_TIME))
    assert p.start == start.replace(tzinfo=CITY_TIME) and p.end == end.replace(tzinfo=CITY_TIME)


def test_period_rolls_over_on_the_boundary() -> None:
    boundary = datetime(2026, 12, 1, tzinfo=CITY_TIME)
    before = period_of("month", boundary - timedelta(microseconds=1))
    after = period_of("month", boundary)
    assert before.end == boundary == after.start
    # 2026-11-30T16:00Z is midnight in the city: already December's budget.
    assert period_of("month", datetime(2026, 11, 30, 16, tzinfo=UTC)).start == boundary
