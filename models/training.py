"""A training job: split off the label, encode the features, fit the template, score the test rows.

The room made the train/test split and computes the metrics from the test scores itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from models.boosting import fit_boosting
from models.custom import fit_custom
from models.features import FeatureEncoder
from models.fitted import FittedModel
from models.params import TrainingJob
from models.scorecard import fit_scorecard

LABEL = "__label"


@dataclass(frozen=True)
class Trained:
    model: FittedModel
    test_scores: NDArray[np.float64]  # probability of label 1, row for row with the test table
    values: dict[str, Any]  # what the room may report about the job


def read_label(table: pa.Table) -> NDArray[np.int8]:
    if LABEL not in table.column_names:
        raise ValueError(f"the training table has no {LABEL} column")
    column = table.column(LABEL)
    if column.null_count:
        raise ValueError(f"{LABEL} has missing values")
    if not (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type)):
        raise ValueError(f"{LABEL} must be 0/1 integers or booleans")
    label = np.asarray(column.to_numpy(), dtype=np.int64)
    low, high = (int(label.min()), int(label.max())) if label.size else (0, 0)
    if low < 0 or high > 1:
        raise ValueError(f"{LABEL} must be 0 or 1")
    if low == high:
        raise ValueError(f"{LABEL} has one class only: a model needs both")
    return label.astype(np.int8)


def fit(
    job: TrainingJob, encoder: FeatureEncoder, features: pa.Table, label: NDArray[np.int8]
) -> FittedModel:
    if job.template == "custom":
        return fit_custom(encoder, encoder.frame(features), label, job.params, job.seed)
    matrix = encoder.matrix(features)
    if job.template == "logistic_scorecard":
        return fit_scorecard(encoder, matrix, label, job.params, job.seed)
    return fit_boosting(encoder, matrix, label, job.params, job.seed)


def train(train_table: pa.Table, test_table: pa.Table, job: TrainingJob) -> Trained:
    label = read_label(train_table)
    features = train_table.drop_columns([LABEL])
    encoder = FeatureEncoder.fit(features, job.feature_types)
    encoder.check_columns(test_table)  # before the fit: a bad test table fails fast
    model = fit(job, encoder, features, label)
    values = {
        "template": job.template,
        "n_train": int(label.size),
        "features": list(encoder.names),
        "params": job.params,
    }
    return Trained(model, model.score(test_table, 0).probability, values)
