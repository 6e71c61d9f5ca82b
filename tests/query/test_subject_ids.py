"""Subject codes to ids by hash and binary search, against a plain dict, and the engine's use."""

from __future__ import annotations

import io

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from hypothesis import given, settings
from hypothesis import strategies as st

from saferoom import datasets as ops
from saferoom import uscc
from saferoom.query.exact import SourceVersion
from saferoom.query.plan import ColumnRef
from saferoom.query.subject_ids import SubjectIds
from tests.query.conftest import QueryRoom
from tests.query.test_frames import COLUMNS, build

CODES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x24F) | st.sampled_from("0123ABC统一"),
                max_size=20)


def subjects_table(codes: list[str]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE subjects (code VARCHAR, sid INTEGER)")
    if codes:
        con.executemany("INSERT INTO subjects VALUES (?, ?)", [(c, 10 * i + 3)
                                                              for i, c in enumerate(codes)])
    return con


@settings(max_examples=60, deadline=None)
@given(held=st.lists(CODES, unique=True, max_size=40), others=st.lists(CODES, max_size=20),
       seed=st.integers(0, 2**32 - 1))
def test_each_code_finds_its_own_id_and_no_other(held: list[str], others: list[str],
                                                 seed: int) -> None:
    con = subjects_table(held)
    ids = SubjectIds(con)
    assert ids.unique
    want = {c: 10 * i + 3 for i, c in enumerate(held)}
    asked = list(np.random.default_rng(seed).permutation([*held, *others]))
    asked = [str(a) for a in asked]
    assert ids.of(con, asked).tolist() == [want.get(a, -1) for a in asked]


def test_an_empty_table_or_request_finds_nothing() -> None:
    con = subjects_table([])
    assert SubjectIds(con).of(con, ["91410302MA0000000X"]).tolist() == [-1]
    con = subjects_table(["a"])
    assert SubjectIds(con).of(con, []).tolist() == []


def test_a_shared_hash_is_reported_so_the_caller_joins_instead() -> None:
    # The table never holds a code twice; a repeated code is the one way to repeat a hash here.
    assert not SubjectIds(subjects_table(["a", "b", "a"])).unique


def test_the_engine_finds_subjects_a_new_version_brings(qroom: QueryRoom) -> None:
    engine, sources, tables = build(qroom)
    tax = {n: s for n, s in sources.items() if n == "tax"}
    old = tables["tax"].column("uscc").to_pylist()[:5]
    new = [str(c) for c in uscc.generate(np.random.default_rng(77), 3, ["410399"])]
    assert engine.frame(tax, COLUMNS[:1], subjects=[*old, *new]).column(
        "__in_tax").to_pylist() == [True] * 5 + [False] * 3
    record = next(d for d in qroom.room.state.datasets() if d.name == "tax")
    grown = pa.concat_tables([tables["tax"], pa.table({
        "uscc": new, "paid": pa.array([1, 2, 3], pa.int64()),
        "late": pa.array([True, None, False], pa.bool_())})])
    buf = io.BytesIO()
    pacsv.write_csv(grown, buf)
    ops.upload(qroom.room, record, buf.getvalue(), "csv", append=False)
    tax = {"tax": (SourceVersion(record.id, "tax", 2), sources["tax"][1])}
    got = engine.frame(tax, [ColumnRef("tax", "paid")], subjects=[*old, *new])
    assert got.column("__in_tax").to_pylist() == [True] * 8
    assert got.column("tax.paid").to_pylist()[5:] == [1, 2, 3]


def test_without_unique_hashes_the_engine_joins_to_the_same_frame(qroom: QueryRoom) -> None:
    engine, sources, tables = build(qroom)
    asked = [*tables["tax"].column("uscc").to_pylist()[::7], "not-a-code"]
    by_hash = engine.frame(sources, COLUMNS, subjects=asked)
    ids = engine._subject_ids
    assert ids is not None and ids.unique
    ids.unique = False
    assert engine.frame(sources, COLUMNS, subjects=asked).equals(by_hash)


def test_a_new_version_without_new_subjects_keeps_the_lookup(qroom: QueryRoom) -> None:
    engine, sources, tables = build(qroom)
    tax = {"tax": sources["tax"]}
    asked = tables["tax"].column("uscc").to_pylist()[:4]
    engine.frame(tax, [ColumnRef("tax", "paid")], subjects=asked)
    kept = engine._subject_ids
    record = next(d for d in qroom.room.state.datasets() if d.name == "tax")
    changed = tables["tax"].set_column(1, "paid", pa.array(np.full(300, 7, dtype=np.int64)))
    buf = io.BytesIO()
    pacsv.write_csv(changed, buf)
    ops.upload(qroom.room, record, buf.getvalue(), "csv", append=False)
    tax = {"tax": (SourceVersion(record.id, "tax", 2), sources["tax"][1])}
    got = engine.frame(tax, [ColumnRef("tax", "paid")], subjects=asked)
    assert got.column("tax.paid").to_pylist() == [7] * 4
    assert engine._subject_ids is kept
