"""Unit tests of saferoom.synthetic: determinism, the declared schemas, realistic correlations.
A quick logistic regression on the joined datasets must find the default signal.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from saferoom import synthetic, uscc
from saferoom.dataset_spec import DatasetCreate

N = 20_000


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return synthetic.generate(N, seed=11)


@pytest.fixture(scope="module")
def joined(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every firm with every department's record, as the room would join them on the key."""
    out = frames["market_registry"]
    for name in ("tax_annual", "social_insurance", "utilities", "court_records", "loan_outcomes"):
        out = out.merge(frames[name], on="uscc", how="left", validate="one_to_one")
    return out


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = (
        synthetic.generate(2_000, 5),
        synthetic.generate(2_000, 5),
        synthetic.generate(2_000, 6),
    )
    assert a.keys() == b.keys() == synthetic.DATASET_SPECS.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["market_registry"]["uscc"].equals(c["market_registry"]["uscc"])


def test_specs_are_valid_request_bodies() -> None:
    departments = {s.department for s in synthetic.DATASET_SPECS.values()}
    assert departments == {
        "market_regulation",
        "tax",
        "social_insurance",
        "utilities",
        "courts",
        "bank",
    }
    for name, spec in synthetic.DATASET_SPECS.items():
        assert spec.name == name == spec.body["name"]
        body = DatasetCreate.model_validate(spec.body)  # the API's own schema check
        assert body.key == "uscc"
        assert body.max_rows_per_subject == 1


def test_regions_and_industries() -> None:
    codes = [r.code for r in synthetic.REGIONS]
    assert len(codes) == len(set(codes)) == 14
    assert all(re.fullmatch(r"4103\d\d", c) for c in codes)
    by_name = {r.name: r for r in synthetic.REGIONS}
    assert by_name["洛龙区"].code == "410311"
    assert by_name["洛龙区"].weight > 5 * by_name["嵩县"].weight
    assert by_name["涧西区"].weight > 3 * by_name["栾川县"].weight
    names = [i.name for i in synthetic.INDUSTRIES]
    assert len(names) == len(set(names)) >= 18
    assert {"制造业", "批发和零售业", "建筑业", "住宿和餐饮业"} <= set(names)


_DTYPES = {"string": "str", "int": "int64", "bool": "bool", "date": "date32[day][pyarrow]"}


def test_frames_match_specs(frames: dict[str, pd.DataFrame]) -> None:
    for name, spec in synthetic.DATASET_SPECS.items():
        df = frames[name]
        columns = spec.body["columns"]
        assert list(df.columns) == [c["name"] for c in columns]
        assert not df.isna().any().any()
        for c in columns:
            col = df[c["name"]]
            assert str(col.dtype) == _DTYPES[c["type"]], (name, c["name"], col.dtype)
            if "values" in c:
                assert set(col) <= set(c["values"])
            if "bounds" in c:
                lo, hi = c["bounds"]
                assert (col >= lo).all()
                # Real data has a few firms beyond any declared bound; clipping handles them.
                assert (col <= hi).mean() > 0.995, (name, c["name"])


def test_keys_are_valid_and_unique(frames: dict[str, pd.DataFrame]) -> None:
    registry = set(frames["market_registry"]["uscc"])
    for name, df in frames.items():
        assert uscc.first_invalid(pa.array(df["uscc"])) is None, name
        assert df["uscc"].is_unique, name
        assert set(df["uscc"]) <= registry, name


def test_coverage_per_dataset(frames: dict[str, pd.DataFrame]) -> None:
    share = {name: len(df) / N for name, df in frames.items()}
    assert share["market_registry"] == 1.0
    assert 0.85 < share["tax_annual"] < 0.95
    assert 0.72 < share["social_insurance"] < 0.88
    assert 0.62 < share["utilities"] < 0.78
    assert 0.03 < share["court_records"] < 0.25
    assert 0.25 < share["loan_outcomes"] < 0.35


def test_registry_looks_like_luoyang(frames: dict[str, pd.DataFrame]) -> None:
    reg = frames["market_registry"]
    # A firm's code carries its registration region.
    assert (reg["uscc"].str[2:8] == reg["region"]).all()
    counts = reg["region"].value_counts()
    assert counts["410311"] > 5 * counts["410325"]  # 洛龙区 vs 嵩县
    assert reg["name"].str.startswith("洛阳").all()
    assert reg["name"].is_unique or reg["name"].nunique() > 0.99 * N
    founded = reg["founded"].astype("datetime64[s]")
    assert founded.max() <= pd.Timestamp(synthetic.AS_OF)
    # "MA" organisation codes exist only since late 2015; older firms kept numeric ones.
    ma = reg["uscc"].str[8:10] == "MA"
    assert founded[ma].min() >= pd.Timestamp("2014-01-01")
    assert founded[~ma].max() <= pd.Timestamp("2017-12-31")
    # Capital is declared in round 万元 and is heavy-tailed.
    cap = reg["registered_capital"]
    assert (cap % 10_000 == 0).all()
    assert cap.mean() > 1.5 * cap.median()


def test_correlations_go_the_right_way(joined: pd.DataFrame) -> None:
    borrowers = joined[joined["default_12m"].notna()]
    default = borrowers["default_12m"].astype(bool)
    assert 0.04 < default.mean() < 0.09
    arrears = borrowers["tax_arrears"].fillna(False).astype(bool)
    assert default[arrears].mean() > 2 * default[~arrears].mean()
    si_late = borrowers["arrears_months"].fillna(0) > 0
    assert default[si_late].mean() > 1.5 * default[~si_late].mean()
    sued = borrowers["judgments"].notna()
    assert default[sued].mean() > default[~sued].mean()
    # Size hangs together across departments.
    sizes = joined[["registered_capital", "annual_tax", "headcount"]].dropna().to_numpy()
    assert np.corrcoef(np.log1p(sizes), rowvar=False).min() > 0.3
    # Older firms are bigger; unhealthy firms fall behind on several bills at once.
    age = (pd.Timestamp(synthetic.AS_OF) - joined["founded"].astype("datetime64[s]")).dt.days
    assert np.corrcoef(age, np.log(joined["registered_capital"]))[0, 1] > 0.1
    with_tax = joined["tax_arrears"].notna() & joined["overdue_months"].notna()
    rows = joined[with_tax]
    tax_late = rows["tax_arrears"].astype(bool)
    assert (rows["overdue_months"][tax_late] > 0).mean() > 2 * (
        rows["overdue_months"][~tax_late] > 0
    ).mean()


def test_logistic_regression_learns_default(joined: pd.DataFrame) -> None:
    b = joined[joined["default_12m"].notna()]
    age = (pd.Timestamp(synthetic.AS_OF) - b["founded"].astype("datetime64[s]")).dt.days / 365
    x = pd.DataFrame(
        {
            "log_capital": np.log1p(b["registered_capital"]),
            "age": age,
            "log_tax": np.log1p(b["annual_tax"].fillna(0)),
            "no_tax_record": b["annual_tax"].isna().astype(float),
            "tax_arrears": b["tax_arrears"].fillna(False).astype(float),
            "log_headcount": np.log1p(b["headcount"].fillna(0)),
            "si_arrears": b["arrears_months"].fillna(0),
            "overdue": b["overdue_months"].fillna(0),
            "log_judgments": np.log1p(b["judgments"].fillna(0)),
            "log_loan": np.log1p(b["loan_amount"]),
        }
    )
    y = b["default_12m"].astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=0, stratify=y
    )
    model = LogisticRegression(max_iter=2_000).fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    assert auc > 0.7, auc


def test_write_csv_round_trips(tmp_path: Path) -> None:
    frames = synthetic.generate(300, seed=2)
    paths = synthetic.write_csv(frames, tmp_path / "out")
    assert set(paths) == set(frames)
    for name, path in paths.items():
        assert path == tmp_path / "out" / f"{name}.csv"
        text = path.read_text(encoding="utf-8")
        assert text.splitlines()[0] == ",".join(frames[name].columns)
        back = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert len(back) == len(frames[name])
        assert back["uscc"].tolist() == frames[name]["uscc"].tolist()
    tax = pd.read_csv(paths["tax_annual"], dtype=str)
    assert set(tax["tax_arrears"]) <= {"true", "false"}
    reg = pd.read_csv(paths["market_registry"], dtype=str)
    assert all(date.fromisoformat(d) for d in reg["founded"])
    assert "洛阳" in reg["name"].iloc[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{n}.csv" for n in frames
    )
    with pytest.raises(ValueError, match="dataset name"):
        synthetic.write_csv({"../escape": frames["utilities"]}, tmp_path)


def test_edge_sizes() -> None:
    empty = synthetic.generate(0)
    assert all(len(df) == 0 for df in empty.values())
    assert list(empty["tax_annual"].columns) == ["uscc", "annual_tax", "tax_arrears"]
    with pytest.raises(ValueError, match="non-negative"):
        synthetic.generate(-1)
