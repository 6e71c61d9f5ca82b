"""In-memory indexes from actor, subject, action, decision and time to sequence numbers.

Queries pick seqs here and read only the matching lines, so a subject's history of ten
events in a log of millions costs ten reads. Arrays are append-only: readers need no lock.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_EMPTY = array("q")


@dataclass(frozen=True, slots=True)
class Query:
    """Filters of an event search; None means "any". Times are microseconds, [since, until)."""

    actor: str | None = None
    subject: str | None = None
    action: str | None = None
    decision: str | None = None
    since_us: int | None = None
    until_us: int | None = None


def _contains(seqs: array[int], seq: int) -> bool:
    i = bisect_left(seqs, seq)
    return i < len(seqs) and seqs[i] == seq


def _add(table: dict[str, array[int]], key: str, seq: int) -> None:
    seqs = table.get(key)
    if seqs is None:
        table[key] = seqs = array("q")
    seqs.append(seq)


class EventIndex:
    """Sorted seq arrays per key (8 bytes per entry) and one timestamp per event."""

    __slots__ = ("_action", "_actor", "_decision", "_subject", "_ts", "_ts_sorted")

    def __init__(self) -> None:
        self._actor: dict[str, array[int]] = {}
        self._subject: dict[str, array[int]] = {}
        self._action: dict[str, array[int]] = {}
        self._decision: dict[str, array[int]] = {}
        self._ts = array("q")
        # The log never writes a time earlier than the last one, but a file written
        # elsewhere might; then time bounds are checked per event instead of bisected.
        self._ts_sorted = True

    def add(
        self,
        seq: int,
        *,
        actor: str | None,
        subjects: Iterable[str],
        action: str,
        decision: str,
        ts_us: int,
    ) -> None:
        """Record event `seq`; seqs must arrive in order, 1, 2, 3, ..."""
        if actor is not None:
            _add(self._actor, actor, seq)
        for subject in dict.fromkeys(subjects):
            _add(self._subject, subject, seq)
        _add(self._action, action, seq)
        _add(self._decision, decision, seq)
        if self._ts and ts_us < self._ts[-1]:
            self._ts_sorted = False
        self._ts.append(ts_us)

    def search(self, query: Query, *, after_seq: int, size: int) -> Iterator[int]:
        """Matching seqs in (after_seq, size], ascending, lazily."""
        lo, hi = max(after_seq, 0) + 1, min(size, len(self._ts))
        if self._ts_sorted:
            if query.since_us is not None:
                lo = max(lo, bisect_left(self._ts, query.since_us) + 1)
            if query.until_us is not None:
                hi = min(hi, bisect_left(self._ts, query.until_us))
        lists = [
            table.get(key, _EMPTY)
            for table, key in (
                (self._actor, query.actor),
                (self._subject, query.subject),
                (self._action, query.action),
                (self._decision, query.decision),
            )
            if key is not None
        ]
        if not lists:
            candidates: Iterable[int] = range(lo, hi + 1)
            others: list[array[int]] = []
        else:
            # Walk the shortest list; test the others by binary search.
            lists.sort(key=len)
            driver, others = lists[0], lists[1:]
            # Lazily by position: a slice would copy a long list (e.g. every "allow").
            first, stop = bisect_left(driver, lo), bisect_right(driver, hi)
            candidates = (driver[i] for i in range(first, stop))
        for seq in candidates:
            if all(_contains(other, seq) for other in others) and self._in_time(seq, query):
                yield seq

    def _in_time(self, seq: int, query: Query) -> bool:
        ts = self._ts[seq - 1]
        if query.since_us is not None and ts < query.since_us:
            return False
        return query.until_us is None or ts < query.until_us
