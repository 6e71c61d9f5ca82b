"""The model artifact: a versioned envelope around a fitted model, pickled and unpickled in jails.

The service keeps these bytes encrypted and only ever hands them back to a jail (ADR 0004).
"""

from __future__ import annotations

import pickle  # noqa: TID251 -- models runs only inside a jail; the service never unpickles
from dataclasses import dataclass

from models.custom import USER_CODE_MODULE, UserCodeError
from models.fitted import FittedModel

FORMAT = 1  # bump when a fitted model's fields change: old artifacts are then refused, not misread
NEEDS_CODE = "this model needs its custom code: start the scorer with that code"


@dataclass(frozen=True)
class Artifact:
    format: int
    template: str
    model: FittedModel


def dump(template: str, model: FittedModel) -> bytes:
    try:
        return pickle.dumps(Artifact(FORMAT, template, model), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(f"the fitted model cannot be pickled as the model artifact: {exc}") from exc


def load(blob: bytes) -> Artifact:
    """Unpickle an artifact made by `dump` in an earlier jail (for custom models, `user_code`
    must be importable here too: the model's classes may live there)."""
    try:
        artifact = pickle.loads(blob)  # noqa: S301 -- in a jail, bytes a jail made and the room kept
    except ModuleNotFoundError as exc:
        if exc.name == USER_CODE_MODULE:
            raise UserCodeError(NEEDS_CODE) from None
        raise ValueError("the model blob is not a model artifact") from exc
    except Exception as exc:  # truncated or foreign bytes fail in many ways; all mean the same
        raise ValueError("the model blob is not a model artifact") from exc
    if not isinstance(artifact, Artifact) or artifact.format != FORMAT:
        raise ValueError(f"not a model artifact of format {FORMAT}")
    return artifact
