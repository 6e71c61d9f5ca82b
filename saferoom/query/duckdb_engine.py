"""The embedded engine: decrypted versions held as DuckDB tables in a locked-down connection.

SQL here is generated from a checked plan only; values go in as parameters, names are quoted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from saferoom.dataset_spec import DatasetCreate
from saferoom.query.exact import Clip, ExactCells, ExactPlan, Quantity, SourceVersion
from saferoom.query.plan import (
    Between,
    BoolOp,
    ColumnRef,
    Compare,
    Condition,
    InList,
    IsNull,
    Negation,
    Value,
)

# Reads a dataset's current version: (its version number, the decrypted table).
Loader = Callable[[str], tuple[int, pa.Table]]
# Defence in depth: even generated SQL runs where files, network, settings and extensions are
# out of reach, and the configuration cannot be changed afterwards.
HARDENED = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}


SID = "__sid"
CLIPPED = "__clip_"
SUMMABLE = frozenset({"measure", "flag"})


def q(name: str) -> str:
    """Quote an identifier (names are schema-validated already; quoting is belt and braces)."""
    return '"' + name.replace('"', '""') + '"'


def clipped(expr: str, clip: Clip, is_bool: bool) -> str:
    """The bounded integer a subject's value contributes: clip to the bounds, fixed-point."""
    if is_bool:
        return f"CAST({expr} AS BIGINT)"
    return (f"CAST(round(least(greatest(CAST({expr} AS DOUBLE), {clip.lo!r}), {clip.hi!r})"
            f" * {clip.scale}) AS BIGINT)")


class DuckDBEngine:
    """Computes `ExactPlan`s over cached, prepared tables: rows bounded per subject."""

    def __init__(self, loader: Loader, threads: int = 2) -> None:
        self._loader = loader
        self._db = duckdb.connect(":memory:", config={**HARDENED, "threads": threads})
        # Subjects get dense integer ids: joining on them is ~2x faster than on 18-char codes.
        self._db.execute("CREATE SEQUENCE subject_ids; "
                         "CREATE TABLE subjects (code VARCHAR, sid INTEGER)")
        self._prepared: dict[str, str] = {}  # dataset id -> table of its current version
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _table(self, source: SourceVersion, schema: DatasetCreate, bound: int) -> str:
        with self._lock:
            cached = self._prepared.get(source.dataset_id)
            if cached == f"{source.dataset_id}_v{source.version}":
                return cached
            # A newer version than the plan saw is fine: sensitivity depends on the schema only.
            version, data = self._loader(source.dataset_id)
            name = f"{source.dataset_id}_v{version}"
            con = self._db.cursor()
            con.register("incoming", data)
            key = q(schema.key)
            con.execute(
                f"INSERT INTO subjects SELECT n.code, nextval('subject_ids') FROM "
                f"(SELECT DISTINCT {key} AS code FROM incoming) n ANTI JOIN subjects USING (code)"
            )
            # Attributes are never queried: only the key and queryable columns are kept, and
            # each summable column also as its clipped fixed-point integer, computed once.
            keep = [f"i.{q(c.name)}" for c in schema.columns if c.role != "attribute"]
            keep += [f"{clipped('i.' + q(c.name), Clip.of(c), c.type == 'bool')} AS "
                     f"{q(CLIPPED + c.name)}" for c in schema.columns if c.role in SUMMABLE]
            # At most `bound` rows per subject, so each enterprise's influence is bounded.
            con.execute(
                f"CREATE OR REPLACE TABLE {q(name)} AS SELECT s.sid AS {SID}, {', '.join(keep)} "
                f"FROM (SELECT *, row_number() OVER (PARTITION BY {key}) AS __n FROM incoming) i "
                f"JOIN subjects s ON s.code = i.{key} WHERE i.__n <= {int(bound)}"
            )
            con.unregister("incoming")
            if cached is not None and cached != name:
                con.execute(f"DROP TABLE IF EXISTS {q(cached)}")
            self._prepared[source.dataset_id] = name
            return name

    def compute(self, exact: ExactPlan, sources: Mapping[str, SourceVersion]) -> ExactCells:
        plan = exact.plan
        alias = {d: f"t{i}" for i, d in enumerate(plan.datasets)}
        tables = {
            d: self._table(sources[d], exact.schemas[d], exact.row_bounds[d])
            for d in plan.datasets
        }

        def col(ref: ColumnRef) -> str:
            return f"{alias[ref.dataset]}.{q(ref.column)}"

        base = plan.datasets[0]
        sql_from = f"{q(tables[base])} AS {alias[base]}"
        for d in plan.datasets[1:]:
            sql_from += (f" JOIN {q(tables[d])} AS {alias[d]} "
                         f"ON {alias[base]}.{SID} = {alias[d]}.{SID}")
        params: list[Value] = []
        select = [f"{col(g)} AS g{i}" for i, g in enumerate(plan.group_by)]
        for i, qty in enumerate(exact.quantities):
            select += self._quantity_sql(i, qty, exact, col, alias[base])
        sql = f"SELECT {', '.join(select)} FROM {sql_from}"
        if plan.where is not None:
            sql += " WHERE " + _condition(plan.where, col, params)
        if plan.group_by:
            sql += " GROUP BY " + ", ".join(f"g{i}" for i in range(len(plan.group_by)))
        table = self._db.cursor().sql(sql, params=params).to_arrow_table()
        return self._cells(table, exact)

    @staticmethod
    def _quantity_sql(
        i: int, qty: Quantity, exact: ExactPlan, col: Callable[[ColumnRef], str], base: str
    ) -> list[str]:
        if qty.kind == "rows":
            return [f"count(*) AS q{i}"]
        if qty.kind == "subjects":
            return [f"count(DISTINCT {base}.{SID}) AS q{i}"]
        assert qty.column is not None
        if qty.kind == "nonnull":
            return [f"count({col(qty.column)}) AS q{i}"]
        spec = exact.schemas[qty.column.dataset].column(qty.column.column)
        assert spec is not None
        assert qty.clip is not None
        if qty.clip == Clip.of(spec):
            value = col(ColumnRef(qty.column.dataset, CLIPPED + qty.column.column))
        else:  # bounds narrowed by the query: clip the raw column now
            value = clipped(col(qty.column), qty.clip, spec.type == "bool")
        out = [f"coalesce(sum({value}), 0) AS q{i}"]
        if qty.dominance:
            out += [f"max(abs({value}), 2) AS top{i}", f"coalesce(sum(abs({value})), 0) AS abs{i}"]
        return out

    @staticmethod
    def _cells(table: pa.Table, exact: ExactPlan) -> ExactCells:
        n_groups = len(exact.plan.group_by)
        columns = [table.column(f"g{i}").to_pylist() for i in range(n_groups)]
        groups: list[tuple[object, ...]] = (
            list(zip(*columns, strict=True)) if n_groups else [()] * table.num_rows
        )
        cells = ExactCells(groups=groups, values={})
        for i, qty in enumerate(exact.quantities):
            cells.values[qty.name] = np.asarray(
                table.column(f"q{i}").to_numpy(zero_copy_only=False), dtype=np.int64
            )
            if qty.dominance:
                tops = table.column(f"top{i}").to_pylist()
                cells.top2[qty.name] = np.array(
                    [sum(t) if t else 0 for t in tops], dtype=np.int64
                )
                cells.abs_sum[qty.name] = np.asarray(
                    table.column(f"abs{i}").to_numpy(zero_copy_only=False), dtype=np.int64
                )
        return cells


def _literal(value: Value, params: list[Value]) -> str:
    params.append(value)
    return "?"


def _condition(c: Condition, col: Callable[[ColumnRef], str], params: list[Any]) -> str:
    if isinstance(c, Compare):
        return f"({col(c.column)} {'<>' if c.op == '!=' else c.op} {_literal(c.value, params)})"
    if isinstance(c, InList):
        items = ", ".join(_literal(v, params) for v in c.values)
        return f"({col(c.column)} {'NOT IN' if c.negated else 'IN'} ({items}))"
    if isinstance(c, Between):
        low, high = _literal(c.low, params), _literal(c.high, params)
        return f"({col(c.column)} {'NOT BETWEEN' if c.negated else 'BETWEEN'} {low} AND {high})"
    if isinstance(c, IsNull):
        return f"({col(c.column)} IS {'NOT NULL' if c.negated else 'NULL'})"
    if isinstance(c, BoolOp):
        joiner = " AND " if c.op == "and" else " OR "
        return "(" + joiner.join(_condition(p, col, params) for p in c.parts) + ")"
    assert isinstance(c, Negation)
    return f"(NOT {_condition(c.part, col, params)})"
