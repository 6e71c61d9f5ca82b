"""The one exception base of `policies`: a denial with a stable code from api.md.

The service maps every `PolicyDenied` to HTTP 403 with `code` unchanged; never wrap it.
"""

from __future__ import annotations

from typing import Literal

DenialCode = Literal[
    "role_not_allowed",
    "no_agreement",
    "purpose_not_allowed",
    "consent_required",
    "column_not_allowed",
    "function_not_allowed",
    "budget_exhausted",
    "threshold_exceeded",
    "review_required",
    "query_not_allowed",
]


class PolicyDenied(Exception):
    """A decision that refuses; `code` is stable, `reason` is human text with no data values."""

    def __init__(self, code: DenialCode, reason: str) -> None:
        super().__init__(reason)
        self.code: DenialCode = code
        self.reason = reason
