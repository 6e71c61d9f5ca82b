"""Differential-privacy budgets as exact integers of micro-ε, their periods, and the spend rule.

Never a float sum: 0.1 + 0.2 is exactly 0.3 here, so a ledger can never drift into overdraw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from policies.decisions import Decision
from policies.documents import AggregatePolicy

MICRO = 1_000_000
MAX_EPSILON_PER_QUERY = Decimal(10)
# Budget periods follow the city's civil calendar (China Standard Time, no daylight saving).
CITY_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
# Banks can pool what they learn, so each dataset also has a total across all banks; unless the
# policy says otherwise it is this many times the per-bank budget.
DEFAULT_TOTAL_FACTOR = 3


@dataclass(frozen=True, order=True)
class Epsilon:
    """An exact, non-negative privacy amount in millionths of ε."""

    micro: int

    def __post_init__(self) -> None:
        if not isinstance(self.micro, int) or isinstance(self.micro, bool) or self.micro < 0:
            raise ValueError("an epsilon is a non-negative whole number of micro-epsilon")

    @classmethod
    def parse(cls, value: object) -> Epsilon:
        """From a request or policy number; refuses NaN, infinities and finer than 1e-6."""
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValueError("epsilon must be a number")
        try:
            exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:
            raise ValueError("epsilon must be a number") from None
        if not exact.is_finite():
            raise ValueError("epsilon must be finite")
        micro = exact * MICRO
        if micro != micro.to_integral_value():
            raise ValueError("epsilon has at most 6 decimal places")
        return cls(int(micro))

    @property
    def value(self) -> Decimal:
        return Decimal(self.micro) / MICRO

    def __float__(self) -> float:
        return self.micro / MICRO

    def __add__(self, other: Epsilon) -> Epsilon:
        return Epsilon(self.micro + other.micro)

    def __sub__(self, other: Epsilon) -> Epsilon:
        return Epsilon(max(0, self.micro - other.micro))

    def split(self, parts: int) -> Epsilon:
        """An equal share, rounded down so the shares never add up to more than the whole."""
        return Epsilon(self.micro // parts)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def period_of(kind: str, now: datetime) -> Period:
    """The budget period containing `now`; boundaries at midnight city time."""
    local = now.astimezone(CITY_TIME)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "day":
        start, end = day, day + timedelta(days=1)
    elif kind == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif kind in ("month", "quarter", "year"):
        months = {"month": 1, "quarter": 3, "year": 12}[kind]
        first = (day.month - 1) // months * months + 1
        start = day.replace(month=first, day=1)
        total = start.month - 1 + months
        end = start.replace(year=start.year + total // 12, month=total % 12 + 1)
    else:
        raise ValueError(f"unknown budget period {kind}")
    return Period(start, end)


@dataclass(frozen=True)
class BudgetLimits:
    """What one dataset's policy allows per period: for one bank, and for all banks together."""

    per_bank: Epsilon
    total: Epsilon
    period: str

    @classmethod
    def of(cls, policy: AggregatePolicy) -> BudgetLimits:
        per_bank = Epsilon.parse(policy.epsilon_per_period)
        total = (Epsilon.parse(policy.epsilon_total_per_period)
                 if policy.epsilon_total_per_period is not None
                 else Epsilon(per_bank.micro * DEFAULT_TOTAL_FACTOR))
        return cls(per_bank, total, policy.period)


@dataclass(frozen=True)
class BudgetState:
    """One dataset's ledger in the current period, as the bank asking sees it."""

    dataset: str
    limits: BudgetLimits
    period: Period
    spent_by_bank: Epsilon
    spent_by_all: Epsilon

    @property
    def remaining(self) -> Epsilon:
        return min(self.limits.per_bank - self.spent_by_bank, self.limits.total - self.spent_by_all)

    def after(self, spend: Epsilon) -> BudgetState:
        return BudgetState(self.dataset, self.limits, self.period,
                           self.spent_by_bank + spend, self.spent_by_all + spend)


def decide_spend(states: Sequence[BudgetState], spend: Epsilon) -> Decision:
    """A query spends `spend` on every dataset it reads; all must afford it, or none is charged."""
    if spend.micro <= 0:
        return Decision.deny("query_not_allowed", "epsilon must be greater than 0")
    if spend.value > MAX_EPSILON_PER_QUERY:
        return Decision.deny("query_not_allowed",
                             f"epsilon may be at most {MAX_EPSILON_PER_QUERY} per query")
    for s in states:
        if s.spent_by_bank + spend > s.limits.per_bank:
            return Decision.deny(
                "budget_exhausted",
                f"the budget of dataset {s.dataset} for this bank has "
                f"{float(s.limits.per_bank - s.spent_by_bank)} left this period",
            )
        if s.spent_by_all + spend > s.limits.total:
            return Decision.deny(
                "budget_exhausted",
                f"the budget of dataset {s.dataset} for all banks has "
                f"{float(s.limits.total - s.spent_by_all)} left this period",
            )
    return Decision.allow()
