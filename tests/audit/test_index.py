"""The in-memory index against a brute-force filter, for events added one at a time or in bulk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.index import EventIndex, Query

entries = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "银行", None]),
        st.lists(st.sampled_from(["S1", "S2", "企业", ""]), max_size=3).map(tuple),
        st.sampled_from(["query", "score"]),
        st.sampled_from(["allow", "deny"]),
        st.integers(0, 5),  # times may step back: a file written elsewhere
    ),
    max_size=40,
)
queries = st.builds(
    Query,
    actor=st.sampled_from([None, "a", "银行", "nobody"]),
    subject=st.sampled_from([None, "S1", "企业", ""]),
    action=st.sampled_from([None, "query", "score"]),
    decision=st.sampled_from([None, "allow", "deny"]),
    since_us=st.none() | st.integers(0, 5),
    until_us=st.none() | st.integers(0, 6),
)


def matches(entry, query: Query) -> bool:
    actor, subjects, action, decision, ts = entry
    return (
        (query.actor is None or actor == query.actor)
        and (query.subject is None or query.subject in subjects)
        and (query.action is None or action == query.action)
        and (query.decision is None or decision == query.decision)
        and (query.since_us is None or ts >= query.since_us)
        and (query.until_us is None or ts < query.until_us)
    )


@settings(max_examples=200, deadline=None)
@given(entries, st.lists(st.integers(1, 10)), st.lists(queries, min_size=1, max_size=8))
def test_bulk_and_single_adds_answer_as_a_filter_would(items, cuts, qs):
    single, bulk = EventIndex(), EventIndex()
    for seq, (actor, subjects, action, decision, ts) in enumerate(items, 1):
        single.add(seq, actor=actor, subjects=subjects, action=action, decision=decision, ts_us=ts)
    start = 0
    for cut in [*cuts, len(items)]:
        bulk.add_many(start + 1, items[start : start + cut])
        start = min(start + cut, len(items))
    for query in qs:
        expected = [seq for seq, e in enumerate(items, 1) if matches(e, query)]
        for index in (single, bulk):
            assert list(index.search(query, after_seq=0, size=len(items))) == expected
            assert list(index.search(query, after_seq=3, size=len(items) - 2)) == [
                seq for seq in expected if 3 < seq <= len(items) - 2
            ]
