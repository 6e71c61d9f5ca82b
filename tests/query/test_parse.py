"""The SQL whitelist: what banks may ask, and dozens of hostile queries with their refusal codes."""

from __future__ import annotations

import pytest

from policies.errors import PolicyDenied
from saferoom.dataset_spec import DatasetCreate
from saferoom.errors import InvalidRequest
from saferoom.query.parse import parse_query
from saferoom.query.plan import (
    AggregateOutput,
    Between,
    BoolOp,
    ColumnRef,
    Compare,
    GroupOutput,
    InList,
    IsNull,
)
from saferoom.synthetic import DATASET_SPECS

CATALOG = {n: DatasetCreate.model_validate(s.body) for n, s in DATASET_SPECS.items()}
M, T = "market_registry", "tax_annual"


def test_count_by_region() -> None:
    plan = parse_query("SELECT region, COUNT(*) FROM market_registry GROUP BY region", CATALOG)
    assert plan.datasets == (M,)
    assert plan.outputs == (GroupOutput(ColumnRef(M, "region"), "region"),
                            AggregateOutput("count", None, "count"))
    assert plan.group_by == (ColumnRef(M, "region"),) and plan.where is None


def test_join_filter_avg_with_aliases() -> None:
    plan = parse_query(
        "select m.region, m.industry, count(*) as n, avg(t.annual_tax) as avg_tax "
        "from market_registry as m inner join tax_annual t on t.uscc = m.uscc "
        "where t.tax_arrears = true and m.region in ('410302', '410311') "
        "and t.annual_tax between 0 and 1000000 and not (m.industry = '制造业') "
        "group by m.region, m.industry",
        CATALOG,
    )
    assert plan.datasets == (M, T)
    assert [o.alias for o in plan.outputs] == ["region", "industry", "n", "avg_tax"]
    assert plan.functions == {"count", "avg"}
    assert isinstance(plan.where, BoolOp)
    flat = str(plan.where)
    assert "InList" in flat and "Between" in flat and "Negation" in flat


def test_using_join_unqualified_columns_and_mirrored_comparison() -> None:
    plan = parse_query(
        "SELECT SUM(annual_tax) FROM market_registry JOIN tax_annual USING (uscc) "
        "WHERE 1000 <= annual_tax AND region IS NOT NULL",
        CATALOG,
    )
    assert plan.where == BoolOp("and", (
        Compare(ColumnRef(T, "annual_tax"), ">=", 1000),
        IsNull(ColumnRef(M, "region"), negated=True),
    ))


def test_not_in_and_not_between_are_negated_in_place() -> None:
    plan = parse_query("SELECT COUNT(*) FROM market_registry WHERE region NOT IN ('410302') "
                       "AND registered_capital NOT BETWEEN 1 AND 2", CATALOG)
    assert plan.where == BoolOp("and", (
        InList(ColumnRef(M, "region"), ("410302",), negated=True),
        Between(ColumnRef(M, "registered_capital"), 1, 2, negated=True),
    ))


REFUSED = [
    # row-level output
    ("SELECT uscc FROM tax_annual", "query_not_allowed"),
    ("SELECT * FROM tax_annual", "query_not_allowed"),
    ("SELECT annual_tax, COUNT(*) FROM tax_annual", "query_not_allowed"),
    ("SELECT region FROM market_registry GROUP BY region", "query_not_allowed"),
    ("SELECT name, COUNT(*) FROM market_registry GROUP BY name", "column_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual GROUP BY uscc", "column_not_allowed"),
    ("SELECT annual_tax, COUNT(*) FROM tax_annual GROUP BY annual_tax", "column_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE uscc = '91410302MA00000000'", "column_not_allowed"),
    ("SELECT COUNT(*) FROM market_registry WHERE name = 'x'", "column_not_allowed"),
    ("SELECT SUM(name) FROM market_registry", "column_not_allowed"),
    ("SELECT SUM(uscc) FROM tax_annual", "column_not_allowed"),
    ("SELECT AVG(region) FROM market_registry", "column_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE nothing = 1", "column_not_allowed"),
    # functions
    ("SELECT MAX(annual_tax) FROM tax_annual", "function_not_allowed"),
    ("SELECT MIN(annual_tax) FROM tax_annual", "function_not_allowed"),
    ("SELECT MEDIAN(annual_tax) FROM tax_annual", "function_not_allowed"),
    ("SELECT COUNT(DISTINCT uscc) FROM tax_annual", "function_not_allowed"),
    ("SELECT list(uscc) FROM tax_annual", "function_not_allowed"),
    ("SELECT string_agg(uscc, ',') FROM tax_annual", "function_not_allowed"),
    ("SELECT getenv('HOME'), COUNT(*) FROM tax_annual", "function_not_allowed"),
    ("SELECT current_setting('threads'), COUNT(*) FROM tax_annual", "function_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE length(uscc) = 18", "function_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE annual_tax > abs(-1)", "function_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE annual_tax = (SELECT MAX(annual_tax) FROM tax_annual)",
     "query_not_allowed"),
    # files, network, settings, catalog
    ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "query_not_allowed"),
    ("SELECT COUNT(*) FROM read_parquet('s3://bucket/x.parquet')", "query_not_allowed"),
    ("SELECT COUNT(*) FROM 'data/state.duckdb'", "query_not_allowed"),
    ("SELECT COUNT(*) FROM duckdb_settings()", "query_not_allowed"),
    ("SELECT COUNT(*) FROM information_schema.tables", "query_not_allowed"),
    ("SELECT COUNT(*) FROM main.tax_annual", "query_not_allowed"),
    ("SELECT COUNT(*) FROM unknown_dataset", "query_not_allowed"),
    ("ATTACH 'x.db' AS x", "query_not_allowed"),
    ("COPY tax_annual TO '/tmp/out.csv'", "query_not_allowed"),
    ("INSTALL httpfs", "query_not_allowed"),
    ("LOAD httpfs", "query_not_allowed"),
    ("SET enable_external_access = true", "query_not_allowed"),
    ("PRAGMA database_list", "query_not_allowed"),
    ("CREATE TABLE x AS SELECT * FROM tax_annual", "query_not_allowed"),
    ("INSERT INTO tax_annual VALUES (1)", "query_not_allowed"),
    ("DELETE FROM tax_annual", "query_not_allowed"),
    ("DROP TABLE tax_annual", "query_not_allowed"),
    ("EXPORT DATABASE '/tmp/x'", "invalid_request"),
    ("CALL pragma_version()", "query_not_allowed"),
    # statements, subqueries, set operations
    ("SELECT COUNT(*) FROM tax_annual; SELECT COUNT(*) FROM tax_annual", "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual; DROP TABLE tax_annual", "query_not_allowed"),
    ("WITH x AS (SELECT * FROM tax_annual) SELECT COUNT(*) FROM x", "query_not_allowed"),
    ("SELECT COUNT(*) FROM (SELECT * FROM tax_annual)", "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual UNION SELECT COUNT(*) FROM tax_annual", "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual UNION ALL SELECT annual_tax FROM tax_annual",
     "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE uscc IN (SELECT uscc FROM tax_annual)",
     "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE annual_tax IN (SELECT 1)", "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE EXISTS (SELECT 1 FROM tax_annual)",
     "query_not_allowed"),
    # windows, ordering and limits
    ("SELECT COUNT(*) OVER () FROM tax_annual", "query_not_allowed"),
    ("SELECT SUM(annual_tax) OVER (PARTITION BY uscc) FROM tax_annual", "query_not_allowed"),
    ("SELECT region, COUNT(*) FROM market_registry GROUP BY region ORDER BY 2 DESC",
     "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual LIMIT 1", "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual LIMIT 1 OFFSET 5", "query_not_allowed"),
    ("SELECT region, COUNT(*) FROM market_registry GROUP BY region HAVING COUNT(*) < 3",
     "query_not_allowed"),
    ("SELECT DISTINCT region, COUNT(*) FROM market_registry GROUP BY region",
     "query_not_allowed"),
    ("SELECT region, COUNT(*) FROM market_registry GROUP BY region QUALIFY 1=1",
     "query_not_allowed"),
    ("SELECT region, COUNT(*) FROM market_registry GROUP BY ROLLUP (region)",
     "query_not_allowed"),
    ("SELECT region, COUNT(*) FROM market_registry GROUP BY CUBE (region)",
     "query_not_allowed"),
    # joins
    ("SELECT COUNT(*) FROM market_registry m LEFT JOIN tax_annual t ON m.uscc = t.uscc",
     "query_not_allowed"),
    ("SELECT COUNT(*) FROM market_registry m CROSS JOIN tax_annual t", "query_not_allowed"),
    ("SELECT COUNT(*) FROM market_registry m, tax_annual t", "query_not_allowed"),
    ("SELECT COUNT(*) FROM market_registry m JOIN tax_annual t ON m.region = t.uscc",
     "query_not_allowed"),
    ("SELECT COUNT(*) FROM market_registry m JOIN tax_annual t ON m.uscc <> t.uscc",
     "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual a JOIN tax_annual b ON a.uscc = b.uscc",
     "query_not_allowed"),
    ("SELECT COUNT(*) FROM market_registry m JOIN tax_annual t ON m.uscc = t.uscc AND 1 = 1",
     "query_not_allowed"),
    # expressions smuggling row values
    ("SELECT SUM(annual_tax * 1000) FROM tax_annual", "query_not_allowed"),
    ("SELECT SUM(CASE WHEN annual_tax > 5 THEN 1 ELSE 0 END) FROM tax_annual",
     "query_not_allowed"),
    ("SELECT COUNT(*) + 1 FROM tax_annual", "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE annual_tax = annual_tax", "query_not_allowed"),
    ("SELECT COUNT(*) FROM tax_annual WHERE annual_tax LIKE '1%'", "query_not_allowed"),
    ("SELECT 1", "query_not_allowed"),
    ("SELECT COUNT(*)", "query_not_allowed"),
]


@pytest.mark.parametrize(("sql", "code"), REFUSED)
def test_refused_with_code(sql: str, code: str) -> None:
    with pytest.raises((PolicyDenied, InvalidRequest)) as info:
        parse_query(sql, CATALOG)
    assert getattr(info.value, "code", None) == code, info.value


@pytest.mark.parametrize(
    "sql",
    [
        "SELEC COUNT(*) FROM tax_annual",
        "SELECT COUNT(* FROM tax_annual",
        "SELECT COUNT(*) FROM tax_annual WHERE annual_tax = 'abc'",
        "SELECT COUNT(*) FROM tax_annual WHERE tax_arrears = 1",
        "SELECT COUNT(*) c, COUNT(*) c FROM tax_annual",
        "x" * 20_001,
    ],
)
def test_malformed_is_invalid_request(sql: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_query(sql, CATALOG)


def test_refusal_messages_do_not_echo_literals() -> None:
    with pytest.raises(PolicyDenied) as info:
        parse_query("SELECT COUNT(*) FROM tax_annual WHERE uscc = '91410302MA4C8A1Q5Y'", CATALOG)
    assert "91410302MA4C8A1Q5Y" not in info.value.reason
