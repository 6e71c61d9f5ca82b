"""Batch answers render to the same JSON as Starlette's JSONResponse; the same bytes for what
batches carry (floats print alike unless in exponent form: 1e-07 there, 1e-7 here)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from saferoom.api.batch_json import BatchJSONResponse


def json_values(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | floats | st.text()
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                        | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(content=json_values(st.floats(allow_nan=False, allow_infinity=False)))
def test_the_same_json_as_json_response(content: Any) -> None:
    assert json.loads(BatchJSONResponse(content).body) == json.loads(JSONResponse(content).body)


@settings(max_examples=300, deadline=None)
@given(content=json_values(st.integers(-1000, 1000).map(lambda n: n / 1000)))
def test_the_same_bytes_for_what_batches_carry(content: Any) -> None:
    assert BatchJSONResponse(content).body == JSONResponse(content).body


def test_a_score_batch_renders_the_same_bytes() -> None:
    scores = [{"uscc": f"91410302MA{i:08d}X", "score": round(i / 9973, 3),
               "probability": round(i / 9973, 3), "reasons": ["税务.annual_tax", "b"]}
              for i in range(2000)]
    scores[7] = {"uscc": "x", "score": None, "reason": "consent_required"}
    body = {"scores": scores}
    assert BatchJSONResponse(body).body == JSONResponse(body).body


def test_nan_never_leaves_as_an_invalid_token() -> None:
    assert BatchJSONResponse({"p": float("nan")}).body == b'{"p":null}'
