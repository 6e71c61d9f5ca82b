"""Bank SQL to a `QueryPlan`, by whitelist: every syntax node must be one we understand.

The bank's text never reaches DuckDB. Anything not recognised is refused with a stable code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Literal

import sqlglot
from sqlglot import exp

from policies.errors import PolicyDenied
from saferoom.dataset_spec import ColumnSpec, DatasetCreate
from saferoom.errors import InvalidRequest
from saferoom.query.plan import (
    AggregateFunction,
    AggregateOutput,
    Between,
    BoolOp,
    ColumnRef,
    Compare,
    CompareOp,
    Condition,
    GroupOutput,
    InList,
    IsNull,
    Negation,
    Output,
    QueryPlan,
    Value,
)

MAX_SQL_CHARS = 20_000
MAX_DATASETS = 6
_SELECT_ARGS = frozenset({"expressions", "from", "from_", "joins", "where", "group"})
_COMPARE: dict[type[exp.Expression], CompareOp] = {
    exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">=",
}
_MIRROR: dict[CompareOp, CompareOp] = {
    "=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<=",
}
_AGGREGATES: dict[type[exp.Expression], AggregateFunction] = {
    exp.Count: "count", exp.Sum: "sum", exp.Avg: "avg",
}
_FILTER_ROLES = frozenset({"dimension", "flag", "measure"})
_SUMMABLE_ROLES = frozenset({"measure", "flag"})


def _refuse(reason: str) -> PolicyDenied:
    return PolicyDenied("query_not_allowed", reason)


class _Scope:
    """The datasets of the FROM clause, with their aliases, for resolving column names."""

    def __init__(self, catalog: Mapping[str, DatasetCreate]) -> None:
        self.catalog = catalog
        self.datasets: list[str] = []
        self.aliases: dict[str, str] = {}

    def add(self, table: exp.Expression) -> str:
        if not isinstance(table, exp.Table) or table.args.get("db") or table.args.get("catalog"):
            raise _refuse("FROM and JOIN may name registered datasets only")
        if not isinstance(table.this, exp.Identifier):
            raise _refuse("FROM and JOIN may name registered datasets only")
        name = table.name
        if name not in self.catalog:
            raise _refuse(f"unknown dataset {name!r}")
        if name in self.datasets:
            raise _refuse("a dataset may appear once per query")
        if len(self.datasets) >= MAX_DATASETS:
            raise _refuse(f"a query may read at most {MAX_DATASETS} datasets")
        alias = table.alias or name
        if alias in self.aliases:
            raise _refuse("table aliases must be distinct")
        self.aliases[alias] = name
        self.datasets.append(name)
        return name

    def column(self, node: exp.Expression) -> tuple[ColumnRef, ColumnSpec]:
        if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
            raise _refuse("expected a column name")
        if node.args.get("db") or node.args.get("catalog"):
            raise _refuse("column names have at most one qualifier")
        name, qualifier = node.name, node.table
        if qualifier:
            dataset = self.aliases.get(qualifier)
            if dataset is None:
                raise _refuse(f"unknown table {qualifier!r}")
            candidates = [dataset]
        else:
            candidates = [d for d in self.datasets if self.catalog[d].column(name) is not None]
        if not candidates or self.catalog[candidates[0]].column(name) is None:
            raise PolicyDenied("column_not_allowed", f"unknown column {name!r}")
        if len(candidates) > 1:
            raise _refuse(f"column {name!r} is ambiguous: qualify it with its dataset")
        spec = self.catalog[candidates[0]].column(name)
        assert spec is not None
        return ColumnRef(candidates[0], name), spec


def _literal(node: exp.Expression, spec: ColumnSpec) -> Value:
    """A literal typed by the column it is compared with; anything else is refused."""
    negative = False
    if isinstance(node, exp.Neg):
        negative, node = True, node.this
    if isinstance(node, exp.Paren):
        return _literal(node.this, spec)
    if isinstance(node, exp.Boolean) and not negative:
        if spec.type != "bool":
            raise InvalidRequest(f"column {spec.name!r} is not a bool", {"column": spec.name})
        return bool(node.this)
    if not isinstance(node, exp.Literal):
        if isinstance(node, exp.Func | exp.Anonymous):
            raise PolicyDenied("function_not_allowed", "functions are not allowed in filters")
        raise _refuse("a filter compares a column with a literal value")
    text = str(node.this)
    try:
        if spec.type == "string" and node.is_string and not negative:
            return text
        if spec.type == "date" and node.is_string and not negative:
            return date.fromisoformat(text)
        if spec.type == "int" and not node.is_string:
            return -int(text) if negative else int(text)
        if spec.type == "float" and not node.is_string:
            return -float(text) if negative else float(text)
    except ValueError:
        pass
    raise InvalidRequest(f"a value compared with {spec.name!r} must be of type {spec.type}",
                         {"column": spec.name})


def _condition(node: exp.Expression, scope: _Scope) -> Condition:
    if isinstance(node, exp.Paren):
        return _condition(node.this, scope)
    if isinstance(node, exp.And | exp.Or):
        joiner: Literal["and", "or"] = "and" if isinstance(node, exp.And) else "or"
        return BoolOp(joiner, (_condition(node.this, scope), _condition(node.expression, scope)))
    if isinstance(node, exp.Not):
        inner = node.this.this if isinstance(node.this, exp.Paren) else node.this
        if isinstance(inner, exp.In | exp.Between | exp.Is):
            return _negate(_condition(inner, scope))
        return Negation(_condition(node.this, scope))
    if type(node) in _COMPARE:
        left, right, op = node.this, node.expression, _COMPARE[type(node)]
        if any(isinstance(side, exp.Func | exp.Anonymous) for side in (left, right)):
            raise PolicyDenied("function_not_allowed", "functions are not allowed in filters")
        if not isinstance(left, exp.Column):
            left, right, op = right, left, _MIRROR[op]
        ref, spec = _filter_column(left, scope)
        return Compare(ref, op, _literal(right, spec))
    if isinstance(node, exp.In):
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise _refuse("IN takes a list of literal values")
        ref, spec = _filter_column(node.this, scope)
        values = tuple(_literal(v, spec) for v in node.expressions)
        if not values or len(values) > 1000:
            raise _refuse("IN takes 1 to 1000 values")
        return InList(ref, values)
    if isinstance(node, exp.Between):
        ref, spec = _filter_column(node.this, scope)
        return Between(ref, _literal(node.args["low"], spec), _literal(node.args["high"], spec))
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        ref, _ = _filter_column(node.this, scope)
        return IsNull(ref)
    if isinstance(node, exp.Func | exp.Anonymous):
        raise PolicyDenied("function_not_allowed", "functions are not allowed in filters")
    raise _refuse("unsupported filter: use comparisons, IN, BETWEEN, IS NULL, AND, OR, NOT")


def _negate(c: Condition) -> Condition:
    if isinstance(c, InList):
        return InList(c.column, c.values, not c.negated)
    if isinstance(c, Between):
        return Between(c.column, c.low, c.high, not c.negated)
    if isinstance(c, IsNull):
        return IsNull(c.column, not c.negated)
    return Negation(c)


def _filter_column(node: exp.Expression, scope: _Scope) -> tuple[ColumnRef, ColumnSpec]:
    if isinstance(node, exp.Func | exp.Anonymous):
        raise PolicyDenied("function_not_allowed", "functions are not allowed in filters")
    ref, spec = scope.column(node)
    if spec.role not in _FILTER_ROLES:
        raise PolicyDenied("column_not_allowed",
                           f"column {spec.name!r} ({spec.role}) may not be used in a filter")
    return ref, spec


def _aggregate(node: exp.Expression, scope: _Scope) -> tuple[AggregateFunction, ColumnRef | None]:
    function = _AGGREGATES[type(node)]
    arg = node.this
    if isinstance(arg, exp.Distinct):
        raise PolicyDenied("function_not_allowed", "DISTINCT aggregates are not allowed")
    if node.args.get("expressions") or (isinstance(node, exp.Count) and node.args.get("big_int")
                                        is False):
        raise _refuse("aggregates take one column")
    if function == "count" and isinstance(arg, exp.Star):
        return function, None
    ref, spec = scope.column(arg)
    if function != "count" and spec.role not in _SUMMABLE_ROLES:
        raise PolicyDenied("column_not_allowed",
                           f"{function.upper()} needs a measure or flag column, not {spec.name!r}")
    if spec.role == "key" and function != "count":
        raise PolicyDenied("column_not_allowed", "the key column cannot be aggregated")
    return function, ref


def _output(node: exp.Expression, scope: _Scope, taken: set[str]) -> Output:
    alias = None
    if isinstance(node, exp.Alias):
        alias, node = node.alias, node.this
    if isinstance(node, exp.Window) or node.find(exp.Window):
        raise _refuse("window functions are not allowed")
    if type(node) in _AGGREGATES:
        function, ref = _aggregate(node, scope)
        default = function if ref is None else f"{function}_{ref.column}"
        name = _unique(alias or default, taken)
        return AggregateOutput(function, ref, name)
    if isinstance(node, exp.Column):
        if isinstance(node.this, exp.Star):
            raise _refuse("SELECT * would emit rows: select group columns and aggregates")
        ref, _ = scope.column(node)
        return GroupOutput(ref, _unique(alias or ref.column, taken))
    if isinstance(node, exp.Star):
        raise _refuse("SELECT * would emit rows: select group columns and aggregates")
    if isinstance(node, exp.Func | exp.Anonymous):
        raise PolicyDenied("function_not_allowed", "only COUNT, SUM and AVG are allowed")
    raise _refuse("select group columns and COUNT/SUM/AVG aggregates only")


def _unique(name: str, taken: set[str]) -> str:
    if name in taken:
        raise InvalidRequest(f"output column {name!r} appears twice: give it an alias")
    taken.add(name)
    return name


def _join(join: exp.Join, scope: _Scope) -> None:
    if join.args.get("side") or join.args.get("kind") not in (None, "", "INNER"):
        raise _refuse("only inner joins on the key are allowed")
    if join.args.get("method") or join.args.get("match_condition"):
        raise _refuse("only inner joins on the key are allowed")
    previous = list(scope.datasets)
    name = scope.add(join.this)
    on, using = join.args.get("on"), join.args.get("using")
    if using:
        keys = {scope.catalog[name].key}
        if [u.name for u in using] != [scope.catalog[name].key] or not all(
            scope.catalog[d].key in keys for d in previous
        ):
            raise _refuse("USING must name the key column shared by both datasets")
        return
    if not isinstance(on, exp.EQ):
        raise _refuse("a join must be ON a.key = b.key")
    left, _ = scope.column(on.this)
    right, _ = scope.column(on.expression)
    sides = {left.dataset, right.dataset}
    if (name not in sides or len(sides) != 2
            or left.column != scope.catalog[left.dataset].key
            or right.column != scope.catalog[right.dataset].key):
        raise _refuse("a join must be ON a.key = b.key")


def parse_query(sql: str, catalog: Mapping[str, DatasetCreate]) -> QueryPlan:
    """Parse one SELECT over `catalog` (the datasets the caller may name) into a plan."""
    if len(sql) > MAX_SQL_CHARS:
        raise InvalidRequest(f"the SQL is longer than {MAX_SQL_CHARS} characters")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, RecursionError):
        # sqlglot's message quotes the text; the bank has it already, but logs must not.
        raise InvalidRequest("the SQL does not parse") from None
    if len(statements) != 1:
        raise _refuse("send exactly one SELECT statement")
    select = statements[0]
    if not isinstance(select, exp.Select):
        raise _refuse("only SELECT queries are allowed")
    extra = sorted(k for k, v in select.args.items() if v and k not in _SELECT_ARGS)
    if extra:
        raise _refuse(f"not allowed in a query: {', '.join(extra)}")
    for sub in select.find_all(exp.Select, exp.Subquery, exp.Union, exp.With):
        if sub is not select:
            raise _refuse("subqueries, CTEs and set operations are not allowed")
    scope = _Scope(catalog)
    source = select.args.get("from") or select.args.get("from_")
    if source is None:
        raise _refuse("a query reads at least one dataset")
    scope.add(source.this)
    for join in select.args.get("joins") or []:
        _join(join, scope)
    taken: set[str] = set()
    outputs = tuple(_output(e, scope, taken) for e in select.expressions)
    group = select.args.get("group")
    group_by: list[ColumnRef] = []
    if group is not None:
        if any(group.args.get(k) for k in ("grouping_sets", "cube", "rollup", "totals")):
            raise _refuse("GROUPING SETS, CUBE and ROLLUP are not allowed")
        for g in group.expressions:
            ref, spec = scope.column(g)
            if spec.role != "dimension":
                raise PolicyDenied("column_not_allowed",
                                   f"group by dimension columns only, not {spec.name!r}")
            if ref in group_by:
                raise _refuse("a column appears twice in GROUP BY")
            group_by.append(ref)
    for o in outputs:
        if isinstance(o, GroupOutput) and o.column not in group_by:
            raise _refuse(f"column {o.column.column!r} would emit rows: group by it or aggregate")
    if not any(isinstance(o, AggregateOutput) for o in outputs):
        raise _refuse("a query must compute at least one aggregate")
    where = select.args.get("where")
    return QueryPlan(
        datasets=tuple(scope.datasets),
        outputs=outputs,
        group_by=tuple(group_by),
        where=_condition(where.this, scope) if where is not None else None,
    )
