"""Seeded synthetic enterprise records for Luoyang (洛阳市), one frame per department dataset.
A latent health and size drive every record, so joins, aggregates and models behave as in life.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from saferoom import uscc

__all__ = [
    "AS_OF",
    "DATASET_SPECS",
    "INDUSTRIES",
    "REGIONS",
    "DatasetSpec",
    "Industry",
    "Region",
    "generate",
    "write_csv",
]

_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]
_BoolArray = npt.NDArray[np.bool_]
_StrArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class Region:
    """A county-level division of Luoyang; `weight` is its rough share of registered firms."""

    code: str
    name: str
    weight: float

    @property
    def urban(self) -> bool:
        # GB/T 2260: codes xx xx 01-20 are municipal districts (市辖区), 21+ counties (县).
        return int(self.code[4:]) < 20

    @property
    def short_name(self) -> str:
        """The name used inside a firm name: 洛龙区 -> 洛龙, 瀍河回族区 -> 瀍河, 嵩县 kept."""
        name = self.name.removesuffix("回族区")
        return name if len(name) <= 2 else name[:-1]


# Codes as of the 2021 reform (偃师市 -> 偃师区 410307, 孟津县 + 吉利区 -> 孟津区 410308).
# Weights: the urban core (洛龙, 涧西, 西工) hosts most firms; mountain counties few.
REGIONS: Final = (
    Region("410302", "老城区", 0.05),
    Region("410303", "西工区", 0.12),
    Region("410304", "瀍河回族区", 0.04),
    Region("410305", "涧西区", 0.14),
    Region("410307", "偃师区", 0.09),
    Region("410308", "孟津区", 0.07),
    Region("410311", "洛龙区", 0.21),
    Region("410323", "新安县", 0.05),
    Region("410324", "栾川县", 0.025),
    Region("410325", "嵩县", 0.02),
    Region("410326", "汝阳县", 0.03),
    Region("410327", "宜阳县", 0.05),
    Region("410328", "洛宁县", 0.03),
    Region("410329", "伊川县", 0.075),
)


@dataclass(frozen=True)
class Industry:
    """A GB/T 4754-2017 section: its share of firms, default risk and size (log-odds, log-scale)."""

    section: str
    name: str
    weight: float
    risk: float
    scale: float
    name_words: tuple[str, ...]


# Sections S (public administration) and T (international organisations) hold no enterprises.
INDUSTRIES: Final = (
    Industry(
        "A", "农、林、牧、渔业", 0.04, 0.3, -0.3, ("农业科技", "生态农业", "种植", "养殖", "农牧")
    ),
    Industry("B", "采矿业", 0.005, 0.4, 0.8, ("矿业", "钼业", "石料", "矿产开发")),
    Industry(
        "C",
        "制造业",
        0.12,
        0.1,
        0.5,
        ("机械制造", "轴承", "耐火材料", "重工", "新材料", "精密机械", "食品", "电子科技"),
    ),
    Industry(
        "D", "电力、热力、燃气及水生产和供应业", 0.01, -0.6, 0.9, ("热力", "燃气", "新能源", "水务")
    ),
    Industry(
        "E", "建筑业", 0.07, 0.6, 0.4, ("建筑工程", "建设工程", "路桥工程", "装饰工程", "市政工程")
    ),
    Industry(
        "F",
        "批发和零售业",
        0.30,
        0.2,
        -0.3,
        ("商贸", "贸易", "百货", "建材", "医药", "农资", "汽车销售", "超市"),
    ),
    Industry("G", "交通运输、仓储和邮政业", 0.04, 0.3, 0.1, ("物流", "运输", "货运", "仓储")),
    Industry(
        "H", "住宿和餐饮业", 0.05, 0.5, -0.4, ("餐饮管理", "酒店管理", "饭店", "水席", "宾馆")
    ),
    Industry(
        "I",
        "信息传输、软件和信息技术服务业",
        0.05,
        0.0,
        -0.1,
        ("信息技术", "网络科技", "软件", "数据科技", "智能科技"),
    ),
    Industry("J", "金融业", 0.01, -0.2, 0.8, ("融资担保", "投资管理", "资产管理")),
    Industry("K", "房地产业", 0.03, 0.7, 0.7, ("房地产开发", "置业", "物业服务")),
    Industry(
        "L",
        "租赁和商务服务业",
        0.10,
        0.1,
        -0.1,
        ("商务咨询", "企业管理", "人力资源", "广告", "会展服务", "设备租赁"),
    ),
    Industry(
        "M",
        "科学研究和技术服务业",
        0.07,
        -0.2,
        0.0,
        ("工程技术", "检测", "环保科技", "工程设计", "技术服务"),
    ),
    Industry(
        "N", "水利、环境和公共设施管理业", 0.01, 0.0, 0.3, ("环境工程", "园林绿化", "水利工程")
    ),
    Industry(
        "O", "居民服务、修理和其他服务业", 0.04, 0.2, -0.6, ("家政服务", "汽车维修", "保洁服务")
    ),
    Industry("P", "教育", 0.015, 0.1, -0.4, ("教育科技", "文化培训", "职业技能培训")),
    Industry("Q", "卫生和社会工作", 0.01, -0.3, 0.0, ("医疗管理", "健康管理", "康复")),
    Industry(
        "R", "文化、体育和娱乐业", 0.03, 0.2, -0.3, ("文化传媒", "文化旅游", "体育发展", "影视")
    ),
)

# Records describe the firms as of this day, so a seed gives the same data in any year.
AS_OF: Final = date(2025, 6, 30)
_EPOCH_DAYS_AS_OF: Final = (AS_OF - date(1970, 1, 1)).days


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's owner and its `POST /v1/datasets` body (api.md); treat `body` as read-only."""

    name: str
    department: str
    body: dict[str, Any]


def _column(
    name: str,
    type_: str,
    role: str,
    classification: str,
    *,
    values: list[str] | None = None,
    bounds: tuple[int, int] | None = None,
) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": type_,
        "role": role,
        "classification": classification,
    }
    if values is not None:
        column["values"] = values
    if bounds is not None:
        column["bounds"] = list(bounds)
    return column


# The code is printed on every business licence, but joined to a department's records it
# points at one firm, so the key is internal everywhere.
_KEY: Final = _column("uscc", "string", "key", "internal")


def _spec(name: str, department: str, description: str, *columns: dict[str, Any]) -> DatasetSpec:
    body = {
        "name": name,
        "description": description,
        "key": "uscc",
        "columns": [dict(_KEY), *columns],
        "max_rows_per_subject": 1,
    }
    return DatasetSpec(name, department, body)


DATASET_SPECS: Final[dict[str, DatasetSpec]] = {
    s.name: s
    for s in (
        _spec(
            "market_registry",
            "market_regulation",
            "市场监管局 企业登记信息：名称、登记区划、行业门类、注册资本（元）、成立日期",
            _column("name", "string", "attribute", "public"),
            _column("region", "string", "dimension", "public", values=[r.code for r in REGIONS]),
            _column(
                "industry", "string", "dimension", "public", values=[i.name for i in INDUSTRIES]
            ),
            _column("registered_capital", "int", "measure", "internal", bounds=(0, 100_000_000)),
            _column("founded", "date", "attribute", "internal"),
        ),
        _spec(
            "tax_annual",
            "tax",
            "税务局 上一纳税年度：纳税总额（元）、是否存在欠税",
            _column("annual_tax", "int", "measure", "sensitive", bounds=(0, 50_000_000)),
            _column("tax_arrears", "bool", "flag", "sensitive"),
        ),
        _spec(
            "social_insurance",
            "social_insurance",
            "人社局 社会保险：参保职工人数、累计欠缴社会保险费月数",
            _column("headcount", "int", "measure", "internal", bounds=(0, 5000)),
            _column("arrears_months", "int", "measure", "sensitive", bounds=(0, 24)),
        ),
        _spec(
            "utilities",
            "utilities",
            "供电、水务 近 24 个月欠费月数",
            _column("overdue_months", "int", "measure", "sensitive", bounds=(0, 24)),
        ),
        _spec(
            "court_records",
            "courts",
            "法院 作为被告或被执行人的生效裁判文书数（仅列有记录的企业）",
            _column("judgments", "int", "measure", "internal", bounds=(0, 50)),
        ),
        _spec(
            "loan_outcomes",
            "bank",
            "银行自有数据：贷款金额（元）与放款后 12 个月内是否违约",
            _column("default_12m", "bool", "flag", "sensitive"),
            _column("loan_amount", "int", "measure", "sensitive", bounds=(0, 10_000_000)),
        ),
    )
}

# Characters of trade names (字号); any pair reads like a real one.
_TRADE_FIRST: Final = (
    "华恒鑫瑞泰宏佳新盛兴金龙德信达通嘉广正和中天利源康鼎博凯诚汇顺益安永昌丰伟明宇东豪聚海"
    "腾锦美优隆升卓祥福润欣晨辉远九洛伊河丹牡圣唐隋周汉古朝国万众力创亿航启"
)
_TRADE_SECOND: Final = (
    "华瑞泰通达源盛昌兴发隆鑫丰业诚信和德安康宇创成豪邦辉星阳光明远航腾峰川山林海祥禄"
    "嘉泽润铭轩宏伟博智尚品科联合众旺达锐驰运晟悦欣诺"
)
# Legal forms: companies by size, then individual businesses (个体工商户), then cooperatives.
_SUFFIXES: Final = (
    "有限公司",
    "有限责任公司",
    "股份有限公司",
    "经营部",
    "商行",
    "店",
    "专业合作社",
)
_SHOP_SUFFIX: Final = 3  # first of the three individual-business suffixes
_COOP_SUFFIX: Final = 6
# pandas' default string dtype; wrapping an Arrow array in it copies nothing.
_STR: Final = pd.StringDtype("pyarrow", na_value=np.nan)
_DATASET_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")


def _sigmoid(x: _FloatArray) -> _FloatArray:
    out: _FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


def _choose(rng: np.random.Generator, n: int, weights: list[float]) -> _IntArray:
    p = np.asarray(weights, dtype=np.float64)
    idx: _IntArray = rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)
    return idx


def _round_to(x: _FloatArray, step: int, minimum: int) -> _IntArray:
    out: _IntArray = np.maximum(np.round(x / step) * step, minimum).astype(np.int64)
    return out


def _take(table: Sequence[str], idx: _IntArray) -> pa.Array:
    """Strings by index into a small table, built in Arrow without a Python object per row."""
    return pa.array(table, type=pa.large_string()).take(pa.array(idx))


def _codes(rng: np.random.Generator, region_idx: _IntArray) -> pa.Array:
    """Codes whose division (positions 3-8) is the firm's own registration region."""
    codes: _StrArray = np.empty(len(region_idx), dtype=object)
    for r, region in enumerate(REGIONS):
        rows = np.flatnonzero(region_idx == r)
        codes[rows] = uscc.generate(rng, len(rows), [region.code])
    return pa.array(codes, type=pa.large_string())


def _names(
    rng: np.random.Generator,
    industry_idx: _IntArray,
    region_idx: _IntArray,
    shop: _BoolArray,
    coop: _BoolArray,
    size: _FloatArray,
) -> pa.Array:
    """Firm names: 洛阳 + trade name + industry word + legal form, mostly unique as in life."""
    n = len(industry_idx)
    trade_table = [a + b for a in _TRADE_FIRST for b in _TRADE_SECOND if a != b]
    trade = rng.integers(0, len(trade_table), n)
    # Industry words: one flat table, each firm picks uniformly among its industry's words.
    word_table = [w for i in INDUSTRIES for w in i.name_words]
    starts = np.cumsum([0] + [len(i.name_words) for i in INDUSTRIES])
    counts = np.diff(starts)
    word = starts[industry_idx] + (rng.random(n) * counts[industry_idx]).astype(np.int64)
    suffix = np.where(size > 2.0, 2, (rng.random(n) < 0.15).astype(np.int64))
    # Names are unique per registration authority, so a clash takes the district's name
    # (洛阳洛龙华瑞商贸有限公司), as registrars do; what then still clashes is left, as in life.
    key = (trade * len(word_table) + word) * len(_SUFFIXES) + suffix
    district = np.where(pd.Series(key).duplicated().to_numpy(), region_idx + 1, 0)
    prefix = np.zeros(n, dtype=np.int64)
    # Individual businesses are no companies: 洛阳市 + district + trade + word + shop word.
    prefix[shop] = 1
    district[shop] = region_idx[shop] + 1
    suffix[shop] = _SHOP_SUFFIX + rng.integers(0, 3, int(shop.sum()))
    district[coop] = region_idx[coop] + 1
    suffix[coop] = _COOP_SUFFIX
    names: pa.Array = pc.binary_join_element_wise(
        _take(["洛阳", "洛阳市"], prefix),
        _take(["", *(r.short_name for r in REGIONS)], district),
        _take(trade_table, trade),
        _take(word_table, word),
        _take(_SUFFIXES, suffix),
        pa.scalar("", type=pa.large_string()),
    )
    return names


def _frame(columns: dict[str, Any], rows: _BoolArray | None = None) -> pd.DataFrame:
    """A DataFrame of the selected rows; Arrow strings stay Arrow (pandas' `str` dtype)."""
    out: dict[str, Any] = {}
    mask = None if rows is None else pa.array(rows)
    for name, col in columns.items():
        if isinstance(col, pa.Array):
            out[name] = pd.Series(col if mask is None else col.filter(mask), dtype=_STR)
        else:
            out[name] = col if rows is None else col[rows]
    return pd.DataFrame(out)


def generate(n_enterprises: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """One DataFrame per dataset in DATASET_SPECS for `n_enterprises` firms, same for a seed.

    Not every firm is in every dataset (about 90% file taxes, 80% pay social insurance, 70%
    have utility accounts, a minority have court judgments, and 30% borrowed from the bank).
    Measures mostly fall within the declared bounds; a few large firms exceed them, as real
    data does, which is what clipping is for.
    """
    if n_enterprises < 0:
        raise ValueError("n_enterprises must be non-negative")
    n = n_enterprises
    rng = np.random.default_rng(seed)
    region_idx = _choose(rng, n, [r.weight for r in REGIONS])
    codes = _codes(rng, region_idx)
    # Position 2 of each code: 1 company, 2 individual business, 3 farmers' cooperative.
    org_type = pc.utf8_slice_codeunits(codes, 1, 2)
    shop = pc.equal(org_type, "2").to_numpy(zero_copy_only=False)
    coop = pc.equal(org_type, "3").to_numpy(zero_copy_only=False)
    # Farmers' cooperatives farm; everyone else follows the city's industry mix.
    industry_idx = _choose(rng, n, [i.weight for i in INDUSTRIES])
    industry_idx[coop] = 0
    risk = np.array([i.risk for i in INDUSTRIES])[industry_idx]
    scale = np.array([i.scale for i in INDUSTRIES])[industry_idx]
    urban = np.array([r.urban for r in REGIONS])[region_idx]

    # Latent state. Age: many young firms, a long tail of old ones (capped at 40 years).
    # Since late 2015 new firms get "MA..." organisation codes; older ones kept their numeric
    # code. So the youngest ages go to the MA codes, the rest to the others, keeping the mix.
    ages = np.sort(np.clip(rng.gamma(1.4, 5.0, n), 0.1, 40.0))
    new_style = pc.equal(pc.utf8_slice_codeunits(codes, 8, 10), "MA").to_numpy(zero_copy_only=False)
    age_years = np.empty(n)
    age_years[new_style] = rng.permutation(ages[: int(new_style.sum())])
    age_years[~new_style] = rng.permutation(ages[int(new_style.sum()) :])
    z_age = np.log(age_years) - 1.6  # roughly centred log-age
    # Survivors are healthier; risky industries less so.
    health = rng.normal(0.0, 1.0, n) + 0.25 * z_age - 0.5 * risk
    # Older, healthier, urban firms are bigger; individual businesses are small.
    size = (
        0.45 * z_age + 0.25 * health + scale + 0.15 * urban - 1.0 * shop + rng.normal(0.0, 0.85, n)
    )

    # Market registry: everyone. Registered capital is declared in round 10,000 yuan (万元).
    founded_days = _EPOCH_DAYS_AS_OF - np.round(age_years * 365.25).astype(np.int32)
    capital = _round_to(np.exp(np.log(1e6) + 1.1 * size + rng.normal(0.0, 0.6, n)), 10_000, 10_000)
    founded = pd.arrays.ArrowExtensionArray(pa.array(founded_days, type=pa.date32()))
    names = _names(rng, industry_idx, region_idx, shop, coop, size)

    # Tax: new firms may not have filed a full year yet.
    in_tax = rng.random(n) < _sigmoid(2.4 + 0.6 * z_age)
    zero_tax = rng.random(n) < _sigmoid(-1.8 - 0.8 * size - 0.5 * health)
    annual_tax = np.where(
        zero_tax,
        0,
        np.round(np.exp(np.log(40_000) + 1.15 * size + 0.35 * health + rng.normal(0.0, 0.7, n))),
    ).astype(np.int64)
    tax_arrears = rng.random(n) < _sigmoid(-3.1 - 1.4 * health + 0.6 * risk)

    # Social insurance: firms with staff are registered; arrears cluster in unhealthy firms.
    in_si = rng.random(n) < _sigmoid(1.8 + 0.9 * size)
    headcount = np.maximum(
        np.round(np.exp(np.log(6.0) + 0.95 * size + rng.normal(0.0, 0.5, n))), 1
    ).astype(np.int64)
    si_late = rng.random(n) < _sigmoid(-2.7 - 1.3 * health + 0.4 * risk)
    arrears_months = np.where(si_late, 1 + rng.poisson(np.exp(0.9 - 0.5 * health)), 0)

    # Utilities over a 24-month window, so at most 24 overdue months.
    in_util = rng.random(n) < _sigmoid(0.85 + 0.3 * size)
    util_late = rng.random(n) < _sigmoid(-2.4 - 1.1 * health + 0.3 * risk)
    overdue_months = np.where(
        util_late, np.minimum(1 + rng.poisson(np.exp(0.6 - 0.4 * health)), 24), 0
    )

    # Courts: only firms with judgments appear; bigger firms are sued more.
    lam = np.exp(-0.2 - 0.5 * health + 0.35 * size)
    in_court = rng.random(n) < _sigmoid(-2.6 - 1.0 * health + 0.35 * size + 0.5 * risk)
    judgments = 1 + rng.poisson(lam)

    # The bank's own book: about 30% of firms borrowed, bigger and healthier ones more often.
    borrowed = rng.random(n) < _sigmoid(-0.85 + 0.5 * size + 0.2 * health)
    loan_amount = _round_to(
        np.exp(np.log(400_000) + 0.8 * size + rng.normal(0.0, 0.5, n)), 10_000, 10_000
    )
    # Default within 12 months: a logistic model of what the departments see plus unobserved
    # health, so the departments' data predicts it well but not perfectly.
    visible_tax = in_tax & tax_arrears
    visible_si = np.where(in_si, arrears_months, 0)
    visible_util = np.where(in_util, overdue_months, 0)
    visible_court = np.where(in_court, judgments, 0)
    logit = (
        -3.35
        - 0.7 * health
        + 0.9 * visible_tax
        + 0.6 * (visible_si > 0)
        + 0.04 * visible_si
        + 0.5 * (visible_util > 0)
        + 0.04 * visible_util
        + 0.5 * np.log1p(visible_court)
        - 0.25 * size
        - 0.2 * z_age
        + 0.4 * risk
    )
    default_12m = rng.random(n) < _sigmoid(logit)

    return {
        "market_registry": _frame(
            {
                "uscc": codes,
                "name": names,
                "region": _take([r.code for r in REGIONS], region_idx),
                "industry": _take([i.name for i in INDUSTRIES], industry_idx),
                "registered_capital": capital,
                "founded": founded,
            },
        ),
        "tax_annual": _frame(
            {"uscc": codes, "annual_tax": annual_tax, "tax_arrears": tax_arrears}, in_tax
        ),
        "social_insurance": _frame(
            {"uscc": codes, "headcount": headcount, "arrears_months": arrears_months}, in_si
        ),
        "utilities": _frame({"uscc": codes, "overdue_months": overdue_months}, in_util),
        "court_records": _frame({"uscc": codes, "judgments": judgments}, in_court),
        "loan_outcomes": _frame(
            {"uscc": codes, "default_12m": default_12m, "loan_amount": loan_amount}, borrowed
        ),
    }


def write_csv(frames: dict[str, pd.DataFrame], directory: Path) -> dict[str, Path]:
    """Write each frame to `directory/<name>.csv` (UTF-8, ISO dates, true/false, no index).

    For synthetic data only: real records never touch disk in clear. Each file appears whole
    or not at all (written aside, then renamed), so a reader never sees half a dataset.
    """
    # Names become file names: hold them to the dataset-name pattern so none escapes.
    for name in frames:
        if not _DATASET_NAME.fullmatch(name):
            raise ValueError(f"not a dataset name: {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in frames.items():
        out = frame.copy()
        for column in out.columns:
            if pd.api.types.is_bool_dtype(out[column]):
                out[column] = np.where(out[column].to_numpy(dtype=bool), "true", "false")
        path = directory / f"{name}.csv"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".csv.tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                out.to_csv(fh, index=False, lineterminator="\n", date_format="%Y-%m-%d")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        paths[name] = path
    return paths
