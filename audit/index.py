"""In-memory indexes from actor, subject, action, decision and time to sequence numbers.

Queries pick seqs here and read only the matching lines, so a subject's history of ten
events in a log of millions costs ten reads. Arrays are append-only: readers need no lock.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
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


def _extend(table: dict[str, array[int]], groups: dict[str, list[int]]) -> None:
    for key, new in groups.items():
        seqs = table.get(key)
        if seqs is None:
            table[key] = array("q", new)
        else:
            seqs.extend(new)


#: What the index keeps of one event: (actor, subjects, action, decision, ts_us).
Entry = tuple[str | None, tuple[str, ...], str, str, int]


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
        self.add_many(seq, [(actor, tuple(subjects), action, decision, ts_us)])

    def add_many(self, first_seq: int, entries: Iterable[Entry]) -> None:
        """`add` each entry in turn, as events first_seq, first_seq + 1, ...

        A batch's events share a few actors, actions and decisions: their seqs are grouped
        and each key's array is extended once. Subjects are mostly distinct, so added as
        they come (grouping them would only cost a list each).
        """
        actors: defaultdict[str, list[int]] = defaultdict(list)
        actions: defaultdict[str, list[int]] = defaultdict(list)
        decisions: defaultdict[str, list[int]] = defaultdict(list)
        by_subject, times = self._subject, self._ts
        last_ts = times[-1] if times else None
        for seq, (actor, subjects, action, decision, ts_us) in enumerate(entries, first_seq):
            if actor is not None:
                actors[actor].append(seq)
            # One subject (the per-subject events) needs no de-duplication.
            for subject in subjects if len(subjects) == 1 else dict.fromkeys(subjects):
                seqs = by_subject.get(subject)
                if seqs is None:
                    by_subject[subject] = seqs = array("q")
                seqs.append(seq)
            actions[action].append(seq)
            decisions[decision].append(seq)
            if last_ts is not None and ts_us < last_ts:
                self._ts_sorted = False
            times.append(ts_us)
            last_ts = ts_us
        _extend(self._actor, actors)
        _extend(self._action, actions)
        _extend(self._decision, decisions)

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
