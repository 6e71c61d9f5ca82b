"""OpenDP's polars `Context` API on the bench's Parquet files; run in bench/.venv-opendp.

`python opendp_runner.py --data DIR --runs K --epsilon E --rows N --out report.json`

Configured as close to SafeRoom's guarantees as it allows: one row per enterprise
(`unit_of(contributions=1)`), a public upper bound on the rows (`Margin(max_length=N)`), the
group keys released from the public domains with `with_keys` (SafeRoom's declared domains;
no `invariant="keys"` assumption about the data), integer data with the same clipping bounds.
Each query gets ε: one compositor per query, ε × (runs + 1) split evenly over its releases.
The data is read into memory once (setup), so no query pays for Parquet reads.
"""

from __future__ import annotations

import json
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import opendp.prelude as dp  # noqa: TID251 (the peer, in its own venv: not the project's OpenDP)
import polars as pl
from _common import QUERIES, Cells, cannot, key, measure, peak_mb, peer_args, write_report

dp.enable_features("contrib")
TAX = (0, 50_000_000)
CAPITAL = (0, 100_000_000)


def main() -> None:
    args = peer_args()
    warnings.simplefilter("ignore")  # signed=False FutureWarnings: unsigned is what we want
    releases = args.runs + 1

    t = time.perf_counter()
    mr = pl.read_parquet(f"{args.data}/market_registry.parquet",
                         columns=["uscc", "region", "industry", "registered_capital"])
    tx = pl.read_parquet(f"{args.data}/tax_annual.parquet", columns=["uscc", "annual_tax"])
    joined = pl.read_parquet(f"{args.data}/q2_joined.parquet",
                             columns=["region", "industry", "annual_tax"])
    domains = json.loads(Path(f"{args.data}/domains.json").read_text())  # declared, public
    regions = pl.DataFrame({"region": domains["region"]})
    industries = pl.DataFrame({"industry": domains["industry"]})

    def context(data: pl.DataFrame):  # type: ignore[no-untyped-def]
        return dp.Context.compositor(
            data=data.lazy(),
            privacy_unit=dp.unit_of(contributions=1),
            privacy_loss=dp.loss_of(epsilon=args.epsilon * releases),
            split_evenly_over=releases,
            margins=[dp.polars.Margin(by=[], max_length=args.rows)],
        )

    contexts = {"Q1": context(mr), "Q3": context(mr), "Q2*": context(joined)}
    setup_s = time.perf_counter() - t
    report = {"system": "OpenDP polars Context", "setup_s": setup_s, "setup_rss_mb": peak_mb(),
              "versions": {p: version(p) for p in ("opendp", "polars")}, "queries": {}}

    plans = {
        "Q1": lambda c: c.query().group_by("region").agg(dp.len().alias("n"))
        .with_keys(regions),
        # Both datasets are private; the Context holds one frame and joins only public keys.
        "Q2": lambda c: c.query().join(tx.lazy(), on="uscc").group_by("region", "industry")
        .agg(dp.len().alias("n"), pl.col("annual_tax").dp.mean(TAX).alias("avg_tax"))
        .with_keys(regions.join(industries, how="cross")),
        "Q2*": lambda c: c.query().group_by("region", "industry")
        .agg(dp.len().alias("n"), pl.col("annual_tax").dp.mean(TAX).alias("avg_tax"))
        .with_keys(regions.join(industries, how="cross")),
        "Q3": lambda c: c.query().group_by("industry")
        .agg(pl.col("registered_capital").dp.sum(CAPITAL).alias("sum_capital"))
        .with_keys(industries),
    }
    for name, plan in plans.items():
        spec = QUERIES[name[:2]]
        ctx = contexts.get(name) or context(mr)
        try:
            summary = str(plan(ctx).summarize())  # builds the measurement: refusals show here
        except Exception as exc:  # what it refuses is the finding
            message = getattr(exc, "message", None) or str(exc)
            report["queries"][name] = cannot(f"{type(exc).__name__}: {message[:300]}")
            continue

        def run(plan=plan, ctx=ctx, spec=spec) -> Cells:  # type: ignore[no-untyped-def]
            df = plan(ctx).release().collect()
            return {
                key([row[g] for g in spec["groups"]]): {
                    a: None if row[a] is None else float(row[a]) for a in spec["aggregates"]
                }
                for row in df.iter_rows(named=True)
            }

        result = measure(run, args.runs)
        result["summary"] = summary
        report["queries"][name] = result
    write_report(args.out, report)


if __name__ == "__main__":
    main()
