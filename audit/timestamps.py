"""RFC 3339 UTC timestamps with microseconds, and their integer form for range queries.

Integers (microseconds since the epoch) keep comparisons exact and cheap in the time index.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def now_us() -> int:
    """The wall clock in whole microseconds since the epoch."""
    return time.time_ns() // 1000


def format_ts(us: int) -> str:
    """E.g. "2026-11-29T23:50:01.123456Z"; built from integers so no float rounding."""
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> int:
    """Any ISO 8601 instant to microseconds; a time without a zone is taken as UTC.

    Raises ValueError for text that is not a timestamp.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND
