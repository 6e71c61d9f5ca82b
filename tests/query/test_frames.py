"""Row-level frames gathered by subject id (training and scoring) against a plain pandas join."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from saferoom import datasets as ops
from saferoom import uscc
from saferoom.dataset_spec import DatasetCreate
from saferoom.query.exact import SourceVersion
from saferoom.query.plan import ColumnRef
from saferoom.query.service import engine_for
from tests.query.conftest import QueryRoom


def spec(name: str, columns: list[dict], rows_per_subject: int = 1) -> dict:
    return {"name": name, "key": "uscc", "max_rows_per_subject": rows_per_subject,
            "columns": [{"name": "uscc", "type": "string", "role": "key"}, *columns]}


OUTCOMES = spec("outcomes", [{"name": "bad", "type": "bool", "role": "flag"}])
TAX = spec("tax", [{"name": "paid", "type": "int", "role": "measure", "bounds": [0, 10**6]},
                   {"name": "late", "type": "bool", "role": "flag"}])
VISITS = spec("visits", [{"name": "n", "type": "int", "role": "measure", "bounds": [0, 100]}],
              rows_per_subject=3)


def build(qroom: QueryRoom):
    rng = np.random.default_rng(5)
    codes = [str(c) for c in uscc.generate(rng, 400, ["410302", "410305"])]
    borrowers = rng.permutation(codes)[:150]  # not in code order: the frame sorts them
    tables = {
        "outcomes": pa.table({"uscc": borrowers, "bad": rng.random(150) < 0.3}),
        "tax": pa.table({"uscc": codes[:300], "paid": rng.integers(0, 10**6, 300),
                         "late": pa.array([None if i % 7 == 0 else bool(i % 2)
                                           for i in range(300)], pa.bool_())}),
        # Three rows for some subjects; the values of a subject's rows are equal, so whichever
        # row counts as its first, the frame holds that value.
        "visits": pa.table({"uscc": [*codes[100:250], *codes[100:130], *codes[100:110]],
                            "n": [*range(150), *range(30), *range(10)]}),
    }
    specs = {"outcomes": OUTCOMES, "tax": TAX, "visits": VISITS}
    ids = {n: qroom.add(specs[n], t) for n, t in tables.items()}
    engine = engine_for(qroom.room)
    sources = {n: (SourceVersion(ids[n], n, 1), DatasetCreate.model_validate(specs[n]))
               for n in tables}
    return engine, sources, tables


COLUMNS = [ColumnRef("tax", "paid"), ColumnRef("tax", "late"), ColumnRef("visits", "n"),
           ColumnRef("outcomes", "bad")]


def expected(tables: dict[str, pa.Table], keys: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({"__key": keys})
    for name in ("tax", "visits", "outcomes"):
        frame = tables[name].to_pandas().drop_duplicates("uscc")
        frame = frame.rename(columns={c: f"{name}.{c}" for c in frame.columns if c != "uscc"})
        frame[f"__in_{name}"] = True
        out = out.merge(frame, left_on="__key", right_on="uscc", how="left").drop(columns="uscc")
        out[f"__in_{name}"] = out[f"__in_{name}"].fillna(False).astype(bool)
    return out


def test_a_base_frame_is_every_subject_of_the_base_in_code_order(qroom: QueryRoom) -> None:
    engine, sources, tables = build(qroom)
    got = engine.frame(sources, COLUMNS, base="outcomes")
    keys = sorted(tables["outcomes"].column("uscc").to_pylist())
    want = expected(tables, keys)
    assert got.column("__key").to_pylist() == keys
    for name in want.columns:
        assert got.column(name).to_pylist() == [
            None if pd.isna(v) else v for v in want[name].astype(object)], name
    # Cached columns serve the next frame the same.
    assert engine.frame(sources, COLUMNS, base="outcomes").equals(got)
    # Without the marks (training needs no key or presence flags): the same rows.
    bare = engine.frame(sources, COLUMNS, base="outcomes", marks=False)
    assert bare.column_names == [f"{c.dataset}.{c.column}" for c in COLUMNS]
    assert bare.equals(got.select(bare.column_names))


def test_a_subject_frame_keeps_the_callers_order_with_nulls_for_unknown_codes(
        qroom: QueryRoom) -> None:
    engine, sources, tables = build(qroom)
    rng = np.random.default_rng(9)
    asked = [str(c) for c in rng.permutation(tables["tax"].column("uscc").to_pylist())[:60]]
    unknown = str(uscc.generate(np.random.default_rng(99), 1, ["410311"])[0])
    asked.insert(7, unknown)
    got = engine.frame({n: s for n, s in sources.items() if n != "outcomes"}, COLUMNS[:3],
                       subjects=asked)
    want = expected(tables, asked)
    assert got.column("__key").to_pylist() == asked
    for name in ("tax.paid", "tax.late", "visits.n", "__in_tax", "__in_visits"):
        assert got.column(name).to_pylist() == [
            None if pd.isna(v) else v for v in want[name].astype(object)], name
    assert got.column("__in_tax").to_pylist()[7] is False


def test_a_new_version_is_read_afresh(qroom: QueryRoom) -> None:
    engine, sources, tables = build(qroom)
    before = engine.frame(sources, COLUMNS, base="outcomes")
    record = next(d for d in qroom.room.state.datasets() if d.name == "tax")
    changed = tables["tax"].set_column(1, "paid", pa.array(np.zeros(300, dtype=np.int64)))
    buf = io.BytesIO()
    pacsv.write_csv(changed, buf)
    ops.upload(qroom.room, record, buf.getvalue(), "csv", append=False)
    sources["tax"] = (SourceVersion(record.id, "tax", 2), sources["tax"][1])
    after = engine.frame(sources, COLUMNS, base="outcomes")
    assert set(after.column("tax.paid").to_pylist()) <= {0, None}
    assert after.column("__key").equals(before.column("__key"))
