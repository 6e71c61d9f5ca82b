"""The audit log's typed failures, each with a stable snake_case `code` for the service.

Messages name sequence numbers, sizes and files only: never event contents.
"""

from __future__ import annotations

from typing import ClassVar


class AuditError(Exception):
    """Base of every audit failure; the service maps it by `code` and releases nothing."""

    code: ClassVar[str] = "audit_error"


class AuditWriteError(AuditError):
    """The log could not be written durably; the caller must not act on the decision."""

    code: ClassVar[str] = "audit_unavailable"


class AuditCorrupted(AuditError):
    """The stored log does not chain or contradicts its own checkpoints: refuse to extend it."""

    code: ClassVar[str] = "audit_corrupted"
