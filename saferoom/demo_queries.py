"""The demo's query step: the bank asks two differentially private questions of department data.

Runs through the same `QueryService` as `POST /v1/queries`, so each query is audited and charged.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.errors import PolicyDenied
from saferoom.auth import Principal
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.query.service import QueryRequest, QueryService
from saferoom.room import Room
from saferoom.synthetic import REGIONS

Echo = Callable[[str], None]
REGION_NAMES = {r.code: r.name for r in REGIONS}
ARREARS_BY_REGION = (
    "SELECT m.region, COUNT(*) AS firms, AVG(t.annual_tax) AS avg_tax "
    "FROM market_registry m JOIN tax_annual t ON m.uscc = t.uscc "
    "WHERE t.tax_arrears = true GROUP BY m.region"
)


def query_step(room: Room, engine: DuckDBEngine, bank: Principal, echo: Echo) -> None:
    service = QueryService(room, engine)
    echo("  the bank asks, with differential privacy (ε = 1.0), how many firms in each "
         "district have tax arrears:")
    echo(f"      {ARREARS_BY_REGION}")
    echo("      (annual_tax clipped to ¥0–2,000,000 here: less noise for typical firms)")
    request = QueryRequest(sql=ARREARS_BY_REGION, epsilon=1.0, purpose="credit_research",
                           bounds={"tax_annual.annual_tax": (0, 2_000_000)})
    body = service.run(bank, request, room.call("query", bank))
    for region, firms, avg_tax in sorted(body["rows"], key=lambda r: -(r[1] or 0))[:6]:
        shown = "suppressed" if firms is None else f"{firms:>6,} firms"
        tax = "" if avg_tax is None else f"  avg tax ¥{avg_tax:,.0f}"
        echo(f"      {REGION_NAMES.get(region, region):<6} {shown}{tax}")
    privacy, budget = body["privacy"], body["budget"]["tax_annual"]
    echo(f"      noise: {privacy['mechanism']}, count ±{privacy['ci95']['firms']:.0f} (95%); "
         f"{body['suppressed_groups']} small or dominated cells suppressed")
    echo(f"      budget of tax_annual this {budget['period']}: spent {budget['spent']:g} of "
         f"{budget['total']:g}, until {budget['period_end'][:10]}")
    refused = QueryRequest(sql="SELECT uscc, annual_tax FROM tax_annual", epsilon=1.0,
                           purpose="credit_research")
    call = room.call("query", bank)
    try:
        service.run(bank, refused, call)
    except PolicyDenied as exc:
        # Over HTTP the error handler records this; in process we record it the same way.
        call.record(resource="tax_annual", purpose=refused.purpose, decision="deny",
                    reason=exc.code)
        echo(f"  a query for row-level values is refused: {exc.code} (audited as a denial)")
