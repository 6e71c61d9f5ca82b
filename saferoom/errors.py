"""The service's exception base, and the one table that maps every error type to HTTP.

Handlers resolve an exception by its MRO, so a new error needs a class here, not a new handler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from audit.errors import AuditError
from policies.errors import PolicyDenied
from sandbox.errors import JailUnavailable, SandboxError


class SafeRoomError(Exception):
    """An error whose `code` and `message` are safe to show: no data values, no stack."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = dict(detail or {})


class InvalidRequest(SafeRoomError):
    code = "invalid_request"


class InvalidFields(InvalidRequest):
    """A well-formed body whose fields break a rule checked after parsing (422, as a schema error).

    `detail["errors"]` has the schema error's shape (`loc`, `msg`, `type`), never a value.
    """

    @classmethod
    def at(cls, loc: Sequence[str | int], msg: str) -> InvalidFields:
        return cls.of([(loc, msg)])

    @classmethod
    def of(cls, problems: Sequence[tuple[Sequence[str | int], str]]) -> InvalidFields:
        return cls("the request does not match the schema", {"errors": [
            {"loc": list(loc), "msg": msg, "type": "value_error"} for loc, msg in problems
        ]})


class Unauthenticated(SafeRoomError):
    code = "unauthenticated"


class NotFound(SafeRoomError):
    """Unknown, or not the caller's: the two are never told apart."""

    code = "not_found"


class Conflict(SafeRoomError):
    code = "conflict"


class PayloadTooLarge(SafeRoomError):
    code = "payload_too_large"


class InvalidData(SafeRoomError):
    """Uploaded rows that break the schema; detail names the first bad row and column."""

    code = "invalid_data"


class UnsupportedMediaType(SafeRoomError):
    code = "unsupported_media_type"


class TamperedData(SafeRoomError):
    """A ciphertext failed authentication: it was changed, truncated or reordered."""

    code = "tampered_data"


class ConfigurationError(SafeRoomError):
    """Settings or keys that refuse to start the service (missing, malformed, placeholder)."""

    code = "configuration_error"


# The one table: exception type -> HTTP status. Looked up along the MRO (most specific first).
HTTP_STATUS: dict[type[Exception], int] = {
    InvalidRequest: 400,
    InvalidFields: 422,
    Unauthenticated: 401,
    PolicyDenied: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    InvalidData: 422,
    TamperedData: 500,
    ConfigurationError: 500,
    AuditError: 503,
    JailUnavailable: 503,
    SandboxError: 500,
    SafeRoomError: 400,
}


def status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        status = HTTP_STATUS.get(cls)
        if status is not None:
            return status
    return 500


def code_for(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else "internal_error"


def public_message(exc: Exception) -> str:
    """The text a caller may see. Foreign exceptions (DuckDB, Arrow) can echo data: never shown."""
    if isinstance(exc, SafeRoomError):
        return exc.message
    if isinstance(exc, PolicyDenied):
        return exc.reason
    if isinstance(exc, JailUnavailable):
        return "the jail is not available, so no code may run here (fail closed)"
    if isinstance(exc, AuditError):
        return "the audit log could not record this request, so nothing was released"
    return "internal error"
