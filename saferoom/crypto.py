"""AES-256-GCM sealing with bound context, and the master key that wraps per-dataset keys.

Every ciphertext carries a fresh random 12-byte nonce (pycryptodome's GCM default is 16).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from Crypto.Cipher import AES
from Crypto.Random import get_random_bytes

from saferoom.errors import TamperedData

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES


def new_key() -> bytes:
    return get_random_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    """A public name for a key: a domain-separated digest, useless for recovering the key."""
    return hashlib.sha256(b"saferoom-key-id\x00" + key).hexdigest()[:16]


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce || ciphertext || tag; `aad` binds the context (key id, object id, version)."""
    nonce = get_random_bytes(NONCE_BYTES)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_BYTES)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return nonce + ciphertext + tag


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt and authenticate, or raise `TamperedData`: never returns garbage."""
    if len(blob) < OVERHEAD:
        raise TamperedData("ciphertext is too short")
    nonce, body, tag = blob[:NONCE_BYTES], blob[NONCE_BYTES:-TAG_BYTES], blob[-TAG_BYTES:]
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=TAG_BYTES)
    cipher.update(aad)
    try:
        return bytes(cipher.decrypt_and_verify(body, tag))
    except ValueError:
        raise TamperedData("ciphertext failed authentication") from None


@dataclass(frozen=True)
class MasterKey:
    """The key that wraps data keys and the room's signing seed; never touches data itself."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise ValueError("a master key is 32 bytes")

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id})"

    @property
    def id(self) -> str:
        return key_id(self.key)

    def wrap(self, secret: bytes, context: str) -> bytes:
        return seal(self.key, secret, self._aad(context))

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        return unseal(self.key, wrapped, self._aad(context))

    def _aad(self, context: str) -> bytes:
        return f"saferoom-wrap/v1|{self.id}|{context}".encode()
