"""SmartNoise SQL (smartnoise-sql) on the bench's Parquet files; run in bench/.venv-smartnoise.

`python smartnoise_runner.py --data DIR --runs K --epsilon E --rows N --out report.json`

How it is configured, as a bank would, and as close to SafeRoom's guarantees as it allows:
- one row per enterprise: `uscc` is the private_id, max_ids = 1; sample_max_ids = False (the
  data really has one row per key, so the per-key sampling subquery would be pure overhead);
- the group keys are public, as SafeRoom's declared domains are: censor_dims = False (no τ
  threshold, no δ spent on it);
- the same clipping bounds; SmartNoise refuses any noise scale above 1e7 ("Noise scale is too
  large"), which both bounds exceed at ε = 1, so money is given to it in 万元 (÷ 10,000:
  capital [0, 10,000] as int, tax [0, 5,000] as float) and scaled back: its own documented
  workaround, and the same privacy for the same clipping;
- `Privacy(epsilon)` is per statistic in SmartNoise, so each query gets ε / k per statistic,
  with k its mechanism count from `get_privacy_cost`, and so spends ε in total like the others.
"""

from __future__ import annotations

import time
import warnings
from importlib.metadata import version

import pandas as pd
import snsql
from _common import QUERIES, Cells, cannot, key, measure, peak_mb, peer_args, write_report
from snsql import Privacy

WAN = 10_000
SQL = {
    "Q1": "SELECT region, COUNT(*) AS n FROM bench.market_registry GROUP BY region",
    "Q2": "SELECT m.region, m.industry, COUNT(*) AS n, AVG(t.tax_wan) AS avg_tax "
          "FROM bench.market_registry AS m JOIN bench.tax_annual AS t ON m.uscc = t.uscc "
          "GROUP BY m.region, m.industry",
    # The same join written with USING, in case only one spelling is refused.
    "Q2 using": "SELECT region, industry, COUNT(*) AS n, AVG(tax_wan) AS avg_tax "
                "FROM bench.market_registry JOIN bench.tax_annual USING (uscc) "
                "GROUP BY region, industry",
    "Q2*": "SELECT region, industry, COUNT(*) AS n, AVG(tax_wan) AS avg_tax "
           "FROM bench.q2_joined GROUP BY region, industry",
    "Q3": "SELECT industry, SUM(capital_wan) AS sum_capital FROM bench.market_registry "
          "GROUP BY industry",
}
SCALE_BACK = {"avg_tax": WAN, "sum_capital": WAN}


def metadata(rows: int) -> dict:
    table = {"rows": rows, "max_ids": 1, "sample_max_ids": False, "censor_dims": False,
             "row_privacy": False}
    uscc = {"type": "string", "private_id": True}
    dims = {"region": {"type": "string"}, "industry": {"type": "string"}}
    tax = {"type": "float", "lower": 0, "upper": 50_000_000 / WAN, "nullable": False}
    return {"saferoom": {"bench": {
        "market_registry": {**table, "uscc": uscc, **dims, "capital_wan": {
            "type": "int", "lower": 0, "upper": 100_000_000 // WAN, "nullable": False}},
        "tax_annual": {**table, "uscc": uscc, "tax_wan": tax},
        # The join done outside DP (one row per enterprise still): not what a bank can do.
        "q2_joined": {**table, "uscc": uscc, **dims, "tax_wan": tax},
    }}}


def main() -> None:
    args = peer_args()
    warnings.simplefilter("ignore")

    t = time.perf_counter()
    mr = pd.read_parquet(f"{args.data}/market_registry.parquet",
                         columns=["uscc", "region", "industry", "registered_capital"])
    mr["capital_wan"] = mr.pop("registered_capital") // WAN  # capital is declared in 万元
    tx = pd.read_parquet(f"{args.data}/tax_annual.parquet", columns=["uscc", "annual_tax"])
    tx["tax_wan"] = tx.pop("annual_tax") / WAN
    joined = pd.read_parquet(f"{args.data}/q2_joined.parquet",
                             columns=["uscc", "region", "industry", "annual_tax"])
    joined["tax_wan"] = joined.pop("annual_tax") / WAN
    reader = snsql.from_df(
        {"bench.market_registry": mr, "bench.tax_annual": tx, "bench.q2_joined": joined},
        privacy=Privacy(epsilon=args.epsilon, delta=1e-6), metadata=metadata(args.rows))
    setup_s = time.perf_counter() - t
    report = {"system": "SmartNoise SQL", "setup_s": setup_s, "setup_rss_mb": peak_mb(),
              "versions": {p: version(p) for p in ("smartnoise-sql", "opendp", "pandas")},
              "queries": {}}

    for name, sql in SQL.items():
        spec = QUERIES[name[:2]]
        try:
            reader.privacy = Privacy(epsilon=1.0, delta=1e-6)
            k = float(reader.get_privacy_cost(sql)[0])  # ε of the query at ε = 1 per statistic
        except Exception as exc:  # what it refuses is the finding
            reason = f"{type(exc).__name__}: {exc}"
            if name == "Q2 using":  # one entry for Q2: both spellings' refusals
                previous = report["queries"].get("Q2", {}).get("cannot")
                if previous is not None:
                    report["queries"]["Q2"] = cannot(f"{previous}; with USING: {reason}")
                    continue
            report["queries"][name] = cannot(reason)
            continue
        if name == "Q2 using":
            name = "Q2"
        reader.privacy = Privacy(epsilon=args.epsilon / k, delta=1e-6)
        spent = float(reader.get_privacy_cost(sql)[0])
        assert abs(spent - args.epsilon) < 1e-9, (name, spent)

        def run(sql: str = sql, spec: dict = spec) -> Cells:
            df = reader.execute_df(sql)
            out: Cells = {}
            for row in df.itertuples(index=False):
                rec = row._asdict()
                out[key([rec[g] for g in spec["groups"]])] = {
                    a: None if pd.isna(rec[a]) else float(rec[a]) * SCALE_BACK.get(a, 1)
                    for a in spec["aggregates"]
                }
            return out

        result = measure(run, args.runs)
        result["epsilon_per_statistic"] = args.epsilon / k
        result["statistics"] = k
        report["queries"][name] = result
    write_report(args.out, report)


if __name__ == "__main__":
    main()
