"""The verification extraction limit: how many distinct values one bank may test per subject field.

Repeating a question reveals nothing new, so only new distinct values count towards the limit.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from datetime import date, datetime

from policies.decisions import Decision

ComparisonValue = str | int | float | bool | date


def value_key(value: ComparisonValue) -> str:
    """A canonical key per comparison value, so `100`, `100.0` and `1e2` count once.

    Cast the value to the column's type first: the key is per typed value, and a type tag keeps
    `"1"` (a string) apart from `1` (a number).
    """
    if isinstance(value, bool):
        return f"bool:{str(value).lower()}"
    if isinstance(value, int):
        return f"num:{value}"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a comparison value must be finite")
        return f"num:{int(value)}" if value.is_integer() else f"num:{value!r}"
    if isinstance(value, datetime):
        raise TypeError("compare dates, not date-times")
    if isinstance(value, date):
        return f"date:{value.isoformat()}"
    return f"str:{value}"


def decide_extraction(asked: AbstractSet[str], key: str, limit: int) -> Decision:
    """May `key` be tested, given the keys already tested for this (bank, subject, field)?

    `asked` is scoped by the caller: per consent where one is required, else for ever.
    """
    if key in asked or len(asked) < limit:
        return Decision.allow()
    return Decision.deny("threshold_exceeded",
                         f"at most {limit} distinct values may be tested for this field")
