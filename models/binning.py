"""Scorecard characteristics: cut each feature into bins and weigh each bin by its evidence (WOE).

Cut points are rounded training quantiles, so a bin label reads like a policy threshold.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.features import OTHER, Feature

MISSING = "missing"
MAX_DIGITS = 15


@dataclass(frozen=True)
class Bins:
    """How one feature is cut. Numeric: bin j holds cuts[j-1] <= x < cuts[j]. Categorical: one bin
    per category code. The last bin is always "missing"."""

    feature: Feature
    cuts: NDArray[np.float64]  # empty for categorical features
    labels: tuple[str, ...]  # one per bin, "missing" last

    @property
    def count(self) -> int:
        return len(self.labels)

    def assign(self, values: NDArray[np.float64]) -> NDArray[np.intp]:
        """The bin of each value (codes for categorical features, as `FeatureEncoder` gives)."""
        missing = np.isnan(values)
        if self.feature.categorical:
            codes = np.where(missing, 0, values)
            index = np.clip(codes, 0, self.count - 2).astype(np.intp)
        else:
            index = np.searchsorted(self.cuts, values, side="right").astype(np.intp)
        index[missing] = self.count - 1
        return index


def fit_bins(feature: Feature, values: NDArray[np.float64], bins: int) -> Bins:
    """Bins for one feature from its training values: up to `bins` quantile bins for numbers and
    dates, one per category for strings and bools; plus the missing bin."""
    if feature.type == "string":
        return Bins(feature, np.empty(0), (*feature.categories, OTHER, MISSING))
    if feature.type == "bool":
        return Bins(feature, np.empty(0), ("false", "true", MISSING))
    dates = feature.type == "date"
    cuts = quantile_cuts(values[~np.isnan(values)], bins, dates)
    return Bins(feature, cuts, (*interval_labels(cuts, dates), MISSING))


def quantile_cuts(present: NDArray[np.float64], bins: int, dates: bool) -> NDArray[np.float64]:
    """Cut points at the training quantiles of the present values, rounded for reading."""
    distinct = np.unique(present)
    if distinct.size < 2:
        return np.empty(0)
    quantiles = np.quantile(present, np.arange(1, bins) / bins)
    # Each cut is the first distinct value above a quantile: tied values (the many zeros of an
    # arrears count) share one bin, and no bin is empty in training.
    position = np.searchsorted(distinct, quantiles, side="right")
    raw = np.unique(distinct[position[position < distinct.size]])
    return readable(raw, distinct[0], distinct[-1], dates)


def readable(
    raw: NDArray[np.float64], low: float, high: float, dates: bool
) -> NDArray[np.float64]:
    """The cuts rounded as coarsely as keeps them apart: dates to a month's first day, numbers to
    the fewest significant figures, so a label reads like a policy threshold, not a firm's value."""
    if dates:
        months = raw.astype(np.int64).astype("datetime64[D]").astype("datetime64[M]")
        tries = [months.astype("datetime64[D]").astype(np.int64).astype(np.float64)]
    else:
        tries = [significant(raw, digits) for digits in range(2, MAX_DIGITS + 1)]
    for rounded in tries:
        kept = np.unique(rounded[(rounded > low) & (rounded <= high)])
        if kept.size == raw.size:
            return kept
    return raw


def significant(values: NDArray[np.float64], digits: int) -> NDArray[np.float64]:
    return np.array([float(f"{v:.{digits}g}") for v in values], dtype=np.float64)


def interval_labels(cuts: NDArray[np.float64], dates: bool) -> tuple[str, ...]:
    """Labels "< a", "[a, b)", …, ">= z" for the cut points; "any value" without cuts."""
    if cuts.size == 0:
        return ("any value",)
    text = [format_cut(c, dates) for c in cuts]
    middle = [f"[{low}, {high})" for low, high in itertools.pairwise(text)]
    return (f"< {text[0]}", *middle, f">= {text[-1]}")


def format_cut(cut: float, dates: bool) -> str:
    if dates:
        return str(np.datetime64(int(cut), "D"))
    if cut == int(cut) and abs(cut) < 1e15:
        return str(int(cut))
    return f"{cut:.6g}"


def weights_of_evidence(
    index: NDArray[np.intp], count: int, label: NDArray[np.int8]
) -> NDArray[np.float64]:
    """WOE per bin, ln(share of goods / share of bads): positive where borrowers repay more.

    Laplace smoothing towards the overall odds (one pseudo-bad and G/B pseudo-goods per bin) keeps
    an empty bin at 0, the population odds, instead of ±inf.
    """
    bads = np.bincount(index, weights=label, minlength=count)
    goods = np.bincount(index, minlength=count) - bads
    odds = goods.sum() / bads.sum()
    woe: NDArray[np.float64] = np.log((goods + odds) / (bads + 1.0)) - np.log(odds)
    return woe
