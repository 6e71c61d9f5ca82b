"""A bank's own model, module `user_code`: call its `fit` and `predict`, check what they return.

Every failure is a UserCodeError saying what is wrong; the jail reports it as the job's error.
"""

from __future__ import annotations

import copy
import importlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from models.features import FeatureEncoder
from models.fitted import Scored
from models.reasons import no_reasons

USER_CODE_MODULE = "user_code"  # the name the jail gives the bank's source (sandbox/inside)


class UserCodeError(Exception):
    """The bank's code is missing a function, raised, or returned something unusable."""


def user_module() -> ModuleType:
    try:
        return importlib.import_module(USER_CODE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != USER_CODE_MODULE:
            raise
        raise UserCodeError(
            "no custom code was given: the job (or the scoring pool) must carry the model's code"
        ) from None


def user_function(name: str, signature: str) -> Callable[..., Any]:
    function = getattr(user_module(), name, None)
    if not callable(function):
        raise UserCodeError(f"custom code must define {name}{signature}")
    return function  # type: ignore[no-any-return]


def seed_everything(seed: int) -> None:
    """Custom code may draw from the global generators: seed them so a job repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)  # the legacy global generator: what np.random.* calls draw from


def call(name: str, function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # not BaseException: SystemExit and the like end the jail as they are
        raise UserCodeError(f"{name} raised {type(exc).__name__}: {exc}") from exc


def checked_probabilities(out: Any, rows: int) -> NDArray[np.float64]:
    """`predict`'s result as floats, if it is one probability in [0, 1] per row."""
    if out is None:
        raise UserCodeError("predict returned None; it must return one probability per row")
    try:
        values = np.asarray(out)
    except Exception:  # a ragged or exotic sequence: numpy's own message says little here
        raise UserCodeError("predict must return a flat sequence of numbers") from None
    if values.dtype.kind not in "biuf":
        raise UserCodeError(f"predict must return numbers, not values of dtype {values.dtype}")
    if values.ndim != 1:
        raise UserCodeError(
            f"predict must return one probability per row (a flat sequence), got shape "
            f"{values.shape}; from predict_proba take column 1"
        )
    if values.size != rows:
        raise UserCodeError(f"predict returned {values.size} values for {rows} rows")
    values = values.astype(np.float64)
    nan = int(np.isnan(values).sum())
    if nan:
        raise UserCodeError(f"predict returned {nan} NaN value(s)")
    infinite = int(np.isinf(values).sum())
    if infinite:
        raise UserCodeError(f"predict returned {infinite} infinite value(s)")
    outside = int(((values < 0) | (values > 1)).sum())
    if outside:
        raise UserCodeError(
            f"predict returned {outside} value(s) outside [0, 1]; it must return the "
            "probability of label 1"
        )
    return values


@dataclass(frozen=True)
class CustomModel:
    """What `fit` returned (pickled with the artifact), and how to read features for `predict`.

    It gives no points and no reason codes: the room cannot explain a model it did not write.
    """

    encoder: FeatureEncoder
    model: Any
    seed: int

    def predict(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        predict = user_function("predict", "(model, X)")
        seed_everything(self.seed)
        return checked_probabilities(call("predict", predict, self.model, frame), len(frame))

    def score(self, table: pa.Table, reasons: int) -> Scored:
        probability = self.predict(self.encoder.frame(table))
        return Scored(probability, None, no_reasons(len(probability)))


def fit_custom(
    encoder: FeatureEncoder,
    frame: pd.DataFrame,
    label: NDArray[np.int8],
    params: Mapping[str, Any],
    seed: int,
) -> CustomModel:
    """Call `user_code.fit(X, y, params)` on the training rows (y: 0/1 as int64)."""
    fit = user_function("fit", "(X, y, params)")
    user_function("predict", "(model, X)")  # refuse before a long fit, not after it
    seed_everything(seed)
    y = pd.Series(label.astype(np.int64), name="label")
    model = call("fit", fit, frame, y, copy.deepcopy(dict(params)))
    return CustomModel(encoder, model, seed)
