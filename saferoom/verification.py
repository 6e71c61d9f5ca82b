"""Verification (核验): yes/no answers to `field op value` about consenting enterprises.

A batch is decided by `policies` in one pass, answered by one set-based query per dataset, and
audited with one event per subject, appended durably before the answers leave.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from policies.decisions import Decision, decide_verify_request
from policies.documents import DatasetPolicy
from policies.extraction import value_key
from policies.facts import Actor
from policies.names import DatasetName, FieldName, Purpose
from policies.verification import CheckRule, check_rule_decision, decide_verify_batch
from saferoom import uscc
from saferoom.auth import Principal
from saferoom.dataset_policy import policy_of
from saferoom.dataset_spec import ColumnSpec, DatasetCreate
from saferoom.datasets import can_see
from saferoom.errors import InvalidFields
from saferoom.extraction_store import ExtractionLedger
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.query.exact import SourceVersion
from saferoom.query.plan import ColumnRef, Compare, CompareOp, Value
from saferoom.recorder import Call, SubjectRelease, record_per_subject
from saferoom.room import Room
from saferoom.state import DatasetRecord, utcnow

MAX_SUBJECTS = 10_000
MAX_CHECKS = 10


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: DatasetName
    field: FieldName
    op: Literal["=", "!=", ">=", "<=", ">", "<"]
    value: StrictBool | StrictInt | StrictFloat | StrictStr


class VerificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    subjects: list[StrictStr] = Field(min_length=1, max_length=MAX_SUBJECTS)
    checks: list[CheckRequest] = Field(min_length=1, max_length=MAX_CHECKS)


@dataclass(frozen=True)
class ResolvedCheck:
    record: DatasetRecord
    schema: DatasetCreate
    column: ColumnSpec
    op: CompareOp
    value: Value


@dataclass(frozen=True)
class ClearedChecks:
    """Checks past the request-wide gate, with the subject-independent part of each decision."""

    checks: list[ResolvedCheck]
    rules: list[CheckRule]
    policies: dict[str, DatasetPolicy | None]
    fixed: list[Decision | None]  # per check: a denial whatever the subject, or None


def typed_value(value: object, column: ColumnSpec) -> Value | None:
    """The check's value as the column's type, or None if it does not fit."""
    kind = column.type
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) else None
    if kind == "float":
        return float(value) if isinstance(value, int | float) else None
    if kind == "date":
        try:
            return date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None
    return value if isinstance(value, str) else None


def check_subjects(subjects: Sequence[str]) -> None:
    """Every subject a valid USCC, none twice; 422 naming the first bad index, not the value."""
    bad = uscc.first_invalid(pa.array(subjects, pa.string()))
    if bad is not None:
        raise InvalidFields.at(["body", "subjects", bad], "not a valid unified social credit code")
    if len(set(subjects)) != len(subjects):
        seen: set[str] = set()
        for i, s in enumerate(subjects):
            if s in seen:
                raise InvalidFields.at(["body", "subjects", i], "a subject appears twice")
            seen.add(s)


class VerificationService:
    def __init__(self, room: Room, engine: DuckDBEngine) -> None:
        self._room = room
        self._engine = engine
        self.ledger = ExtractionLedger(room.state)

    def resolve(self, principal: Principal, checks: Sequence[CheckRequest],
                where: str = "checks") -> list[ResolvedCheck]:
        """Datasets the caller may see, real fields, values of the field's type; else 422."""
        visible = {d.name: d for d in self._room.state.datasets() if can_see(principal, d)}
        out = []
        for i, check in enumerate(checks):
            record = visible.get(check.dataset)
            if record is None:
                raise InvalidFields.at(["body", where, i, "dataset"], "unknown dataset")
            schema = DatasetCreate.model_validate(record.spec)
            column = schema.column(check.field)
            if column is None:
                raise InvalidFields.at(["body", where, i, "field"], "unknown field")
            value = typed_value(check.value, column)
            if value is None:
                raise InvalidFields.at(["body", where, i, "value"],
                                       f"the value must be of type {column.type}")
            out.append(ResolvedCheck(record, schema, column, check.op, value))
        return out

    def clear(self, principal: Principal, purpose: str, requested: Sequence[CheckRequest],
              now: datetime, where: str = "checks") -> ClearedChecks:
        """Resolve the checks and pass the request-wide gate (role, agreement, purpose; 403).

        An operator the policy forbids refuses the request too; other rule-level denials are
        left in `fixed` for the caller (verification answers them null per check).
        """
        checks = self.resolve(principal, requested, where)
        records = {c.record.name: c.record for c in checks}
        policies = {name: policy_of(d) for name, d in records.items()}
        decide_verify_request(
            Actor(principal.id, principal.role), policies,
            self._room.agreements.for_bank(principal.id), purpose, now,
            own_datasets=frozenset(n for n, d in records.items() if d.owner_id == principal.id),
        ).raise_if_denied()
        rules = [CheckRule(c.record.name, c.column.name, c.op, value_key(c.value)) for c in checks]
        fixed = [check_rule_decision(policies[rule.dataset], rule, purpose) for rule in rules]
        for decision in fixed:
            if decision is not None and decision.code == "query_not_allowed":
                decision.raise_if_denied()  # an operator the policy forbids: refuse the request
        return ClearedChecks(checks, rules, policies, fixed)

    def decide(self, bank_id: str, purpose: str, subjects: Sequence[str],
               cleared: ClearedChecks, now: datetime) -> list[list[Decision]]:
        """Per subject, per check: consent and the extraction limit, recorded in the ledger."""
        consents = self._room.consents.live_for(bank_id, subjects, purpose, now)

        def judge(asked: Any) -> tuple[Any, Any]:
            verdict = decide_verify_batch(bank_id, purpose, subjects, cleared.rules,
                                          cleared.policies, consents, asked, now)
            return verdict.decisions, verdict.newly_asked

        decisions: list[list[Decision]] = self.ledger.decide_and_record(
            bank_id, subjects, judge, now)
        return decisions

    def verify(self, principal: Principal, request: VerificationRequest, call: Call
               ) -> dict[str, Any]:
        now = utcnow()
        check_subjects(request.subjects)
        cleared = self.clear(principal, request.purpose, request.checks, now)
        checks = cleared.checks
        decisions = self.decide(principal.id, request.purpose, request.subjects, cleared, now)
        # Only the subjects with an allowed check are read at all.
        chosen = [i for i, row in enumerate(decisions) if any(d.allowed for d in row)]
        position = {i: pos for pos, i in enumerate(chosen)}
        try:
            answers = self.answer(checks, [request.subjects[i] for i in chosen]) if chosen else []
        except Exception:
            # The ledger has counted the asks and data may have been read: each subject
            # still finds the attempt in its access log.
            record_per_subject(
                call, [SubjectRelease(request.subjects[i], "deny", "internal_error", None)
                       for i in chosen],
                resource=",".join(sorted(cleared.policies)), purpose=request.purpose)
            raise
        results: list[dict[str, Any]] = []
        releases: list[SubjectRelease] = []
        for i, subject in enumerate(request.subjects):
            mine = []
            for j, decision in enumerate(decisions[i]):
                item: dict[str, Any] = {"uscc": subject, "check": j, "answer": None}
                if not decision.allowed:
                    item["reason"] = decision.code
                else:
                    present, answer = answers[j]
                    pos = position[i]
                    if not present[pos]:
                        item["reason"] = "no_record"
                    elif answer[pos] is None:
                        item["reason"] = "no_value"
                    else:
                        item["answer"] = answer[pos]
                mine.append(item)
            denied = sorted({str(d.code) for d in decisions[i] if not d.allowed})
            allowed = any(d.allowed for d in decisions[i])
            releases.append(SubjectRelease(subject, "allow" if allowed else "deny",
                                           ",".join(denied) or None, mine))
            results.extend(mine)
        record_per_subject(call, releases, resource=",".join(sorted(cleared.policies)),
                           purpose=request.purpose)
        return {"results": results}

    def answer(
        self, checks: Sequence[ResolvedCheck], subjects: Sequence[str]
    ) -> list[tuple[Any, list[bool | None]]]:
        """Per check: (which subjects have rows, the answers), one query per dataset."""
        by_dataset: dict[str, list[int]] = defaultdict(list)
        for j, c in enumerate(checks):
            by_dataset[c.record.name].append(j)
        out: list[Any] = [None] * len(checks)
        for indexes in by_dataset.values():
            first = checks[indexes[0]]
            cells = self._engine.verify(
                SourceVersion(first.record.id, first.record.name, first.record.version),
                first.schema, subjects,
                [Compare(ColumnRef(first.record.name, checks[j].column.name), checks[j].op,
                         checks[j].value) for j in indexes],
            )
            for k, j in enumerate(indexes):
                out[j] = (cells.present, cells.answers[k])
        return out
