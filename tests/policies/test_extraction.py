"""The verification extraction limit counts distinct values, once each."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.extraction import decide_extraction, value_key


def test_limit_and_repeats():
    asked = {value_key(1), value_key(2), value_key(3)}
    assert decide_extraction(asked, value_key(2), 3).allowed
    denied = decide_extraction(asked, value_key(4), 3)
    assert (denied.allowed, denied.code) == (False, "threshold_exceeded")
    assert decide_extraction(set(), value_key(4), 1).allowed


def test_keys_are_canonical_and_typed():
    assert value_key(100) == value_key(100.0) == value_key(1e2)
    assert value_key("1") != value_key(1)
    assert value_key(True) != value_key(1)
    assert value_key(0.5) != value_key(0.25)
    assert value_key(date(2026, 1, 2)) == "date:2026-01-02"


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_values_are_refused(value):
    with pytest.raises(ValueError, match="finite"):
        value_key(value)


def test_datetimes_are_refused():
    with pytest.raises(TypeError):
        value_key(datetime(2026, 1, 2))


@given(values=st.lists(st.integers(-5, 5) | st.text(max_size=2) | st.booleans(), max_size=40),
       limit=st.integers(1, 6))
def test_property_never_more_than_limit_distinct_values(values, limit):
    asked: set[str] = set()
    for value in values:
        key = value_key(value)
        decision = decide_extraction(asked, key, limit)
        if key in asked:
            assert decision.allowed
        if decision.allowed:
            asked.add(key)
        else:
            assert decision.code == "threshold_exceeded"
        assert len(asked) <= limit
    assert len(asked) == min(limit, len({value_key(v) for v in values}))
