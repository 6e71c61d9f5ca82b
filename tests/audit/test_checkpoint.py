"""Ed25519 signing (RFC 8032 vector) and signed checkpoints."""

from __future__ import annotations

import dataclasses

import pytest

from audit.checkpoint import (
    Checkpoint,
    Ed25519Signer,
    sign_checkpoint,
    verify_checkpoint,
    verify_signature,
)
from tests.audit.helpers import ATTACKER, SIGNER

ROOT = "ab" * 32
TS = "2026-11-29T23:50:01.123456Z"


def test_rfc8032_test_vector_1():
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    signer = Ed25519Signer(seed)
    assert signer.public_key.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    signature = signer.sign(b"")
    assert signature.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert verify_signature(signer.public_key.hex(), b"", signature.hex())


def test_signatures_bind_key_and_message():
    sig = SIGNER.sign(b"receipt").hex()
    key = SIGNER.public_key.hex()
    assert verify_signature(key, b"receipt", sig)
    assert not verify_signature(key, b"receipt!", sig)
    assert not verify_signature(ATTACKER.public_key.hex(), b"receipt", sig)
    for junk_key, junk_sig in (
        ("zz", sig),
        (key, "zz"),
        (key[:-2], sig),
        (key, sig[:-2]),
        ("00" * 32, sig),
    ):
        assert not verify_signature(junk_key, b"receipt", junk_sig)


def test_seeds():
    assert len(Ed25519Signer.generate_seed()) == 32
    assert Ed25519Signer.generate_seed() != Ed25519Signer.generate_seed()
    assert Ed25519Signer(bytes(range(32))).public_key == SIGNER.public_key
    with pytest.raises(ValueError, match="32 bytes"):
        Ed25519Signer(b"short")
    assert "seed" not in repr(SIGNER)
    assert bytes(range(32)).hex() not in repr(SIGNER)


def test_checkpoint_message_and_signature():
    cp = sign_checkpoint(SIGNER, 12, ROOT, TS)
    assert cp.signed_message() == f"saferoom-checkpoint/v1\n12\n{ROOT}\n{TS}\n".encode()
    assert cp.public_key == SIGNER.public_key.hex()
    assert verify_checkpoint(cp)
    assert Checkpoint.from_dict(cp.to_dict()) == cp
    for change in (
        {"size": 13},
        {"root": "cd" * 32},
        {"ts": TS.replace("01.", "02.")},
        {"public_key": ATTACKER.public_key.hex()},
    ):
        assert not verify_checkpoint(dataclasses.replace(cp, **change))


def test_a_checkpoint_signature_is_not_a_receipt_signature():
    cp = sign_checkpoint(SIGNER, 1, ROOT, TS)
    assert not verify_signature(cp.public_key, b"1\n" + ROOT.encode(), cp.signature)


def test_from_dict_rejects_malformed():
    good = sign_checkpoint(SIGNER, 1, ROOT, TS).to_dict()
    for broken in (
        {**good, "size": -1},
        {**good, "size": "1"},
        {**good, "root": "xy"},
        {**good, "signature": None},
    ):
        with pytest.raises(ValueError, match="checkpoint"):
            Checkpoint.from_dict(broken)
