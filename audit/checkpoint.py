"""Signed checkpoints (size, Merkle root, time) and the Ed25519 signing they rely on.

Auditors keep checkpoints as witnesses; `Ed25519Signer` and `verify_signature` are general.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from audit.events import is_hex_hash, json_object

CHECKPOINT_CONTEXT = b"saferoom-checkpoint/v1\n"
SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


class Signer(Protocol):
    """Anything that signs with a key whose 32-byte raw Ed25519 public key it can show."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class Ed25519Signer:
    """Pure Ed25519 (RFC 8032) from a 32-byte seed; the seed never leaves this object."""

    __slots__ = ("_public_key", "_signer")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise ValueError("an Ed25519 seed is 32 bytes")
        key = ECC.construct(curve="Ed25519", seed=seed)
        self._signer = eddsa.new(key, "rfc8032")
        self._public_key: bytes = key.public_key().export_key(format="raw")

    @staticmethod
    def generate_seed() -> bytes:
        return os.urandom(SEED_SIZE)

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._signer.sign(message)
        return signature

    def __repr__(self) -> str:
        return f"Ed25519Signer(public_key={self._public_key.hex()})"


def verify_signature(public_key_hex: str, message: bytes, signature_hex: str) -> bool:
    """True only for a valid RFC 8032 signature; malformed keys or hex are simply False."""
    try:
        public_key = bytes.fromhex(public_key_hex)
        signature = bytes.fromhex(signature_hex)
        if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
            return False
        verifier = eddsa.new(eddsa.import_public_key(public_key), "rfc8032")
        verifier.verify(message, signature)
    except (ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: "the log had `size` events, with Merkle root `root`, at `ts`"."""

    size: int
    root: str
    ts: str
    public_key: str
    signature: str

    def signed_message(self) -> bytes:
        # The context line keeps a checkpoint signature from being valid for anything else
        # the same key signs (consent receipts).
        return CHECKPOINT_CONTEXT + f"{self.size}\n{self.root}\n{self.ts}\n".encode()

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root,
            "ts": self.ts,
            "public_key": self.public_key,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, line: bytes | str) -> Checkpoint:
        """Parse one stored line strictly; ValueError if it is not a checkpoint."""
        return cls.from_dict(json_object(line))

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Checkpoint:
        """Parse strictly; raises ValueError naming the bad field."""
        size = record.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("checkpoint size must be a non-negative integer")
        if not is_hex_hash(record.get("root")):
            raise ValueError("checkpoint root must be 64 lowercase hex digits")
        for name in ("ts", "public_key", "signature"):
            if not isinstance(record.get(name), str):
                raise ValueError(f"checkpoint {name} must be a string")
        return cls(
            size=size,
            root=record["root"],
            ts=record["ts"],
            public_key=record["public_key"],
            signature=record["signature"],
        )


def sign_checkpoint(signer: Signer, size: int, root: str, ts: str) -> Checkpoint:
    unsigned = Checkpoint(
        size=size, root=root, ts=ts, public_key=signer.public_key.hex(), signature=""
    )
    signature = signer.sign(unsigned.signed_message())
    return Checkpoint(
        size=size, root=root, ts=ts, public_key=unsigned.public_key, signature=signature.hex()
    )


def verify_checkpoint(cp: Checkpoint) -> bool:
    """The signature is valid for `cp.public_key`; whether that key is trusted is the caller's."""
    return verify_signature(cp.public_key, cp.signed_message(), cp.signature)
