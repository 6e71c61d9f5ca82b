"""The jail: runs untrusted or template Python with no network and no host files.

Built on bubblewrap; if the jail cannot start, nothing runs (fail closed). See docs/adr/0004.
"""

from sandbox.config import JailConfig, PythonRuntime
from sandbox.errors import (
    InvalidJob,
    JailUnavailable,
    OutputRejected,
    PoolUnavailable,
    SandboxError,
)
from sandbox.job import JailJob, JailResult
from sandbox.limits import JOB_LIMITS, JailLimits
from sandbox.pool import WarmPool
from sandbox.runner import BubblewrapRunner, Runner, check_jail
from sandbox.stub import StubRunner

__all__ = [
    "JOB_LIMITS",
    "BubblewrapRunner",
    "InvalidJob",
    "JailConfig",
    "JailJob",
    "JailLimits",
    "JailResult",
    "JailUnavailable",
    "OutputRejected",
    "PoolUnavailable",
    "PythonRuntime",
    "Runner",
    "SandboxError",
    "StubRunner",
    "WarmPool",
    "check_jail",
]
