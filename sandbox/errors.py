"""The sandbox's typed failures, each with a stable snake_case `code` for the service.

Messages name limits, paths of our own files and exit statuses only: never data values.
"""

from __future__ import annotations

from typing import ClassVar


class SandboxError(Exception):
    """Base of every sandbox failure; the service maps it by `code`."""

    code: ClassVar[str] = "sandbox_error"


class JailUnavailable(SandboxError):
    """The jail cannot be built or fails its self-check: refuse jobs, never run them unjailed."""

    code: ClassVar[str] = "jail_unavailable"


class InvalidJob(SandboxError):
    """The job itself is malformed (entry name, parameters, input names): nothing was started."""

    code: ClassVar[str] = "invalid_job"


class OutputRejected(SandboxError):
    """What came back over the output pipe is not a well-formed result; it is dropped whole."""

    code: ClassVar[str] = "jail_output_rejected"


class PoolUnavailable(SandboxError):
    """A warm pool is closed, or its jails could not be started and set up."""

    code: ClassVar[str] = "pool_unavailable"
