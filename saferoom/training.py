"""Joint modeling jobs: what a bank asks for, the facts `policies` judges, and one training run.

The room joins the data, splits it (seeded, stratified), runs `fit`/`predict` in a jail, and
computes the released metrics itself; the artifact stays sealed in the room.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.decisions import Decision, decide_train, decide_training_size
from policies.documents import DatasetPolicy
from policies.facts import Actor
from policies.names import FieldRef, Purpose
from saferoom import uscc
from saferoom.auth import Principal
from saferoom.dataset_policy import policy_of
from saferoom.dataset_spec import DatasetCreate
from saferoom.datasets import can_see
from saferoom.errors import InvalidFields, NotFound
from saferoom.holdout import stratified_holdout
from saferoom.mock import mock_table
from saferoom.model_metrics import evaluate
from saferoom.query.duckdb_engine import DuckDBEngine
from saferoom.query.exact import SourceVersion
from saferoom.query.plan import ColumnRef
from saferoom.room import Room
from saferoom.state import DatasetRecord
from sandbox import JOB_LIMITS, JailJob, JailResult, Runner

TEST_SHARE = 0.3
SPLIT_SEED = 20_261_130
MOCK_ROWS = 2_000
LABEL = "__label"
TRAIN_ENTRY = "models.entry:train"


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    kind: Literal["train"] = "train"
    template: Literal["logistic_scorecard", "gradient_boosting"] | None = None
    code: str | None = Field(default=None, min_length=1, max_length=200_000)
    features: list[str] = Field(min_length=1, max_length=100)
    label: FieldRef
    params: dict[str, Any] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _template_or_code(self) -> Self:
        if (self.template is None) == (self.code is None):
            raise ValueError("give exactly one of template and code")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features must be distinct")
        return self


@dataclass(frozen=True)
class ResolvedJob:
    """The datasets and columns a job reads, checked against what the bank may see."""

    features: tuple[ColumnRef, ...]
    label: ColumnRef
    records: dict[str, DatasetRecord]
    schemas: dict[str, DatasetCreate]  # each record's spec, validated once

    def schema(self, name: str) -> DatasetCreate:
        return self.schemas[name]


def resolve(room: Room, principal: Principal, request: JobRequest) -> ResolvedJob:
    """Each `dataset.field` must exist and be visible; the label must be the bank's own."""
    visible = {d.name: d for d in room.state.datasets() if can_see(principal, d)}
    refs: list[ColumnRef] = []
    schemas: dict[str, DatasetCreate] = {}
    wanted: list[tuple[list[str | int], str]] = [
        (["body", "features", i], r) for i, r in enumerate(request.features)
    ]
    wanted.append((["body", "label"], request.label))
    for where, ref in wanted:
        dataset, _, field = ref.partition(".")
        record = visible.get(dataset)
        if record is None or not field:
            raise NotFound("no such dataset", {"field": ".".join(map(str, where))})
        if dataset not in schemas:
            schemas[dataset] = DatasetCreate.model_validate(record.spec)
        column = schemas[dataset].column(field)
        if column is None or column.role == "key":
            raise InvalidFields.at(where, "not a usable column of that dataset")
        refs.append(ColumnRef(dataset, field))
    *features, label = refs
    if visible[label.dataset].owner_id != principal.id:
        raise InvalidFields.at(["body", "label"], "the label must be a column of your own dataset")
    if label in features:
        raise InvalidFields.at(["body", "features"], "the label cannot also be a feature")
    records = {r.dataset: visible[r.dataset] for r in refs}
    return ResolvedJob(tuple(features), label, records, {n: schemas[n] for n in records})


def policies_of(job: ResolvedJob) -> dict[str, DatasetPolicy | None]:
    return {n: policy_of(d) for n, d in job.records.items()}


def decide(room: Room, principal: Principal, purpose: str, job: ResolvedJob, *,
           custom_code: bool, approved: bool, now: Any) -> Decision:
    return decide_train(
        Actor(principal.id, principal.role), policies_of(job),
        room.agreements.for_bank(principal.id), purpose, now, custom_code=custom_code,
        code_approved=approved,
        own_datasets=frozenset(n for n, d in job.records.items() if d.owner_id == principal.id),
    )


def reviewers(job: ResolvedJob) -> tuple[str, ...]:
    """Departments whose data custom code would read: each must approve it."""
    return tuple(sorted({d.owner_id for d in job.records.values() if d.owner_role == "department"}))


def feature_types(job: ResolvedJob) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in job.features:
        column = job.schema(f.dataset).column(f.column)
        assert column is not None
        out[f"{f.dataset}.{f.column}"] = column.type
    return out


def real_frame(engine: DuckDBEngine, job: ResolvedJob) -> pa.Table:
    """Features and label, one row per labelled subject of the bank's dataset."""
    sources = {n: (SourceVersion(d.id, n, d.version), job.schema(n))
               for n, d in job.records.items()}
    return engine.frame(sources, [*job.features, job.label], base=job.label.dataset, marks=False)


def check_size(job: ResolvedJob, frame: pa.Table) -> None:
    """`min_training_rows`, counted on the rows that carry a label (the ones trained on)."""
    label = frame.column(f"{job.label.dataset}.{job.label.column}")
    decide_training_size(policies_of(job), frame.num_rows - label.null_count).raise_if_denied()


def mock_frame(job: ResolvedJob, rows: int = MOCK_ROWS, seed: int = 0) -> pa.Table:
    """The same columns drawn from declared domains and bounds: what a dry run trains on."""
    keys = uscc.generate(np.random.default_rng(seed), rows)
    columns: dict[str, pa.Array] = {"__key": pa.array(keys, pa.string())}
    for i, name in enumerate(sorted(job.records)):
        table = mock_table(job.schema(name), rows, seed=seed + i + 1)
        for ref in (*job.features, job.label):
            if ref.dataset == name:
                columns[f"{name}.{ref.column}"] = table.column(ref.column)
    return pa.table(columns)


@dataclass(frozen=True)
class TrainingRun:
    """What one run produced: the jail's raw result, and what the room computed from it."""

    result: JailResult
    metrics: dict[str, Any] | None
    artifact: bytes | None
    failure: str | None  # our words, safe for the bank; the jail's own error is kept apart


def _labels(frame: pa.Table, label: str) -> tuple[pa.Table, np.ndarray] | str:
    column = frame.column(label)
    if column.null_count:
        frame = frame.filter(pc.is_valid(column))
    values = frame.column(label).to_numpy(zero_copy_only=False).astype(np.float64)
    if not ((values == 0) | (values == 1)).all():
        return "the label must hold only 0/1 or true/false"
    if values.size == 0 or values.min() == values.max():
        return "the label has a single class"
    return frame, values.astype(np.int8)


def train(runner: Runner, frame: pa.Table, job: ResolvedJob, request_like: Mapping[str, Any],
          *, dry_run: bool) -> TrainingRun:
    """Split, fit and predict in a jail, check what came back, compute the metrics."""
    label = f"{job.label.dataset}.{job.label.column}"
    labelled = _labels(frame, label)
    if isinstance(labelled, str):
        return TrainingRun(JailResult(status="error"), None, None, labelled)
    frame, y = labelled
    try:
        train_idx, test_idx = stratified_holdout(y, TEST_SHARE, SPLIT_SEED)
    except ValueError:
        return TrainingRun(JailResult(status="error"), None, None,
                           "too few rows of a class to hold out a test set")
    names = [f"{f.dataset}.{f.column}" for f in job.features]
    x = frame.select(names)
    train_table = x.take(pa.array(train_idx)).append_column(
        LABEL, pa.array(y[train_idx], pa.int8()))
    result = runner.run(JailJob(
        entry=TRAIN_ENTRY,
        inputs={"train": train_table, "test": x.take(pa.array(test_idx))},
        params={"template": request_like.get("template") or "custom",
                "params": dict(request_like.get("params") or {}), "seed": SPLIT_SEED,
                "feature_types": feature_types(job)},
        code=request_like.get("code"),
        limits=JOB_LIMITS["dry_run" if dry_run else "train"],
    ))
    if not result.ok:
        why = f"the job hit its {result.limit} limit" if result.limit else "the code failed"
        return TrainingRun(result, None, None, why)
    scores = result.tables.get("test_scores")
    if scores is None or "score" not in scores.column_names or scores.num_rows != len(test_idx):
        return TrainingRun(result, None, None, "predict did not return one score per test row")
    s = scores.column("score").to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        return TrainingRun(result, None, None, "predict must return probabilities in [0, 1]")
    metrics = {**evaluate(y[test_idx], s), "n_train": len(train_idx)}
    artifact = result.blobs.get("model")
    if artifact is None:
        return TrainingRun(result, None, None, "the job returned no model")
    return TrainingRun(result, metrics, bytes(artifact), None)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def code_digest(code: str | None) -> str | None:
    return None if code is None else "sha256:" + hashlib.sha256(code.encode()).hexdigest()
