"""Jail entry points for joint modeling: `train`, `scorer` (a warm pool's setup) and `score`.

Called by the jail's bootstrap with Arrow tables, JSON params and blobs; never by the service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from models import artifact
from models.params import read_reason_count, read_training_job
from models.scoring import scores_table
from models.training import train as train_model

Handler = Callable[[Mapping[str, pa.Table], Mapping[str, Any]], dict[str, Any]]


def only_inputs(inputs: Mapping[str, pa.Table], names: tuple[str, ...]) -> list[pa.Table]:
    unknown = sorted(set(inputs) - set(names))
    missing = [name for name in names if name not in inputs]
    if unknown or missing:
        raise ValueError(f"inputs must be exactly {list(names)}")
    return [inputs[name] for name in names]


def model_blob(blobs: Mapping[str, bytes]) -> bytes:
    if "model" not in blobs:
        raise ValueError("the model artifact (blob 'model') is missing")
    return bytes(blobs["model"])


def train(
    inputs: Mapping[str, pa.Table], params: Mapping[str, Any], blobs: Mapping[str, bytes]
) -> dict[str, Any]:
    """Fit a template or the bank's code on `train`; score `test`; return the artifact.

    inputs {"train": features + "__label", "test": features}; params {"template", "params",
    "seed", "feature_types"} -> {"tables": {"test_scores": [score]}, "values": {"template",
    "n_train", "features", "params"}, "blobs": {"model"}}.
    """
    job = read_training_job(params)
    train_table, test_table = only_inputs(inputs, ("train", "test"))
    trained = train_model(train_table, test_table, job)
    scores = pa.table({"score": pa.array(trained.test_scores, pa.float64())})
    return {
        "tables": {"test_scores": scores},
        "values": trained.values,
        "blobs": {"model": artifact.dump(job.template, trained.model)},
    }


def scorer(blobs: Mapping[str, bytes]) -> Handler:
    """Warm-pool setup: unpickle the artifact once; the handler scores batch after batch.

    handler({"features": table}, {"reasons": 3}) -> {"tables": {"scores": probability, points,
    reasons}}; a custom model's pool must carry its code, and gives no points and no reasons.
    """
    model = artifact.load(model_blob(blobs)).model

    def handle(inputs: Mapping[str, pa.Table], params: Mapping[str, Any]) -> dict[str, Any]:
        count = read_reason_count(params)
        (features,) = only_inputs(inputs, ("features",))
        return {"tables": {"scores": scores_table(model.score(features, count))}}

    return handle


def score(
    inputs: Mapping[str, pa.Table], params: Mapping[str, Any], blobs: Mapping[str, bytes]
) -> dict[str, Any]:
    """One batch in a fresh jail (a dry run): `scorer(blobs)(inputs, params)`."""
    return scorer(blobs)(inputs, params)
