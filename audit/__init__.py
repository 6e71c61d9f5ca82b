"""The tamper-evident log: append, hash chain and Merkle tree, signed checkpoints, verify.

A leaf package: stdlib and pycryptodome only, so auditors can verify a copy offline.
"""

from audit.checkpoint import Checkpoint, Ed25519Signer, Signer, verify_checkpoint, verify_signature
from audit.errors import AuditCorrupted, AuditError, AuditWriteError
from audit.events import AuditEvent, EventDraft
from audit.log import AuditLog
from audit.verify import VerifyReport, verify_log

__all__ = [
    "AuditCorrupted",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "AuditWriteError",
    "Checkpoint",
    "Ed25519Signer",
    "EventDraft",
    "Signer",
    "VerifyReport",
    "verify_checkpoint",
    "verify_log",
    "verify_signature",
]
