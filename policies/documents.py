"""The dataset policy document a department PUTs: aggregate, verify and model sections.

Validated at the edge with pydantic (unknown keys refused); an absent section forbids that use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
)

from policies.facts import ColumnFacts
from policies.names import FieldName, Purpose

AggregateFunction = Literal["count", "sum", "avg"]
ComparisonOp = Literal["=", "!=", ">=", "<=", ">", "<"]
Period = Literal["day", "week", "month", "quarter", "year"]

# Ordering comparisons on strings or booleans would let a bank binary-search a hidden value,
# so only equality is offered on them.
ORDERING_OPS: frozenset[str] = frozenset({">=", "<=", ">", "<"})
ORDERED_TYPES: frozenset[str] = frozenset({"int", "float", "date"})

_T = TypeVar("_T")


def _number_only(value: object) -> object:
    # Budgets are exact (style.md 4): take the JSON number as written, never a string or a bool.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    return value


Epsilon = Annotated[
    Decimal,
    BeforeValidator(_number_only),
    Field(gt=0, allow_inf_nan=False),
    # The contract shows epsilon as a JSON number; Decimal would otherwise serialize as a string.
    PlainSerializer(float, return_type=float, when_used="json"),
]
PositiveInt = Annotated[int, Field(strict=True, ge=1)]
Flag = Annotated[bool, Field(strict=True)]
Purposes = Annotated[list[Purpose], Field(min_length=1, max_length=64)]


def unique_items(values: list[_T]) -> list[_T]:
    """A field validator: refuses a list that names anything twice."""
    if len(set(values)) != len(values):
        raise ValueError("entries must be unique")
    return values


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem in a policy document: the dotted path to it and what is wrong."""

    path: str
    message: str


class PolicyDocumentError(ValueError):
    """A rejected policy document; the service answers 422 with `issues` as the detail."""

    def __init__(self, issues: tuple[PolicyIssue, ...]) -> None:
        super().__init__("; ".join(f"{issue.path}: {issue.message}" for issue in issues))
        self.issues = issues


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AggregatePolicy(_Document):
    """Differentially private aggregate queries: which purposes, functions, and budget."""

    purposes: Purposes
    functions: Annotated[list[AggregateFunction], Field(min_length=1)]
    min_group_size: PositiveInt = 10
    epsilon_per_period: Epsilon
    # Across all banks together (they can pool results); None means 3 × the per-bank budget.
    epsilon_total_per_period: Epsilon | None = None
    period: Period = "month"

    _unique_lists = field_validator("purposes", "functions")(unique_items)


class VerifyPolicy(_Document):
    """Yes/no checks on one subject's fields: which purposes, fields and operators."""

    purposes: Purposes
    consent_required: Flag = True
    fields: Annotated[dict[FieldName, Annotated[list[ComparisonOp], Field(min_length=1)]],
                      Field(min_length=1)]
    max_distinct_values_per_consent: PositiveInt = 3

    _unique_purposes = field_validator("purposes")(unique_items)

    @field_validator("fields")
    @classmethod
    def _unique_ops(cls, fields: dict[str, list[ComparisonOp]]) -> dict[str, list[ComparisonOp]]:
        for ops in fields.values():
            unique_items(ops)
        return fields


class ModelPolicy(_Document):
    """Joint models trained and scored in the room: purposes, code review and scoring rules."""

    purposes: Purposes
    custom_code_requires_review: Flag = True
    min_training_rows: PositiveInt = 500
    scoring_consent_required: Flag = True
    max_scores_per_subject_per_day: PositiveInt = 3

    _unique_purposes = field_validator("purposes")(unique_items)


class DatasetPolicy(_Document):
    """A dataset's whole policy document; a section left out forbids that use."""

    aggregate: AggregatePolicy | None = None
    verify: VerifyPolicy | None = None
    model: ModelPolicy | None = None
    consent_notice: Annotated[str, Field(strict=True, min_length=1, max_length=4000)] | None = None
    # Capped so that `now + max_consent_days` can never overflow a datetime.
    max_consent_days: Annotated[int, Field(strict=True, ge=1, le=3650)] = 365

    def consent_purposes(self) -> frozenset[str]:
        """Purposes for which an enterprise consent can matter: verification and scoring."""
        purposes: set[str] = set()
        if self.verify is not None:
            purposes.update(self.verify.purposes)
        if self.model is not None:
            purposes.update(self.model.purposes)
        return frozenset(purposes)

    def check_against_schema(self, columns: Mapping[str, ColumnFacts]) -> None:
        """Raise `PolicyDocumentError` naming each field path that the dataset cannot honour."""
        issues: list[PolicyIssue] = []
        if self.verify is not None:
            for name, ops in self.verify.fields.items():
                path = f"verify.fields.{name}"
                column = columns.get(name)
                if column is None:
                    issues.append(PolicyIssue(path, "the dataset has no such column"))
                elif column.role == "key":
                    issues.append(PolicyIssue(path, "the subject key cannot be verified"))
                else:
                    for op in ops:
                        if op in ORDERING_OPS and column.type not in ORDERED_TYPES:
                            issues.append(PolicyIssue(
                                path, f"operator {op} needs an int, float or date column",
                            ))
        if issues:
            raise PolicyDocumentError(tuple(issues))


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "document"


def parse_policy(document: object, columns: Mapping[str, ColumnFacts]) -> DatasetPolicy:
    """Validate a PUT body against the document shape and then the dataset's columns."""
    try:
        policy = DatasetPolicy.model_validate(document)
    except ValidationError as exc:
        # `msg` never echoes the input value, so the detail carries no data.
        raise PolicyDocumentError(tuple(
            PolicyIssue(_path(error["loc"]), error["msg"]) for error in exc.errors()
        )) from None
    policy.check_against_schema(columns)
    return policy
