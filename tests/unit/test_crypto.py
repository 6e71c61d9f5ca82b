"""Sealing and sealed files: round trips, and every kind of tampering is detected."""

from __future__ import annotations

from pathlib import Path

import pytest

from saferoom.crypto import NONCE_BYTES, MasterKey, new_key, seal, unseal
from saferoom.errors import TamperedData
from saferoom.sealed_file import SealedWriter, read_sealed


def test_seal_round_trip_and_fresh_nonces() -> None:
    key = new_key()
    a, b = seal(key, b"secret", b"ctx"), seal(key, b"secret", b"ctx")
    assert unseal(key, a, b"ctx") == b"secret"
    assert a[:NONCE_BYTES] != b[:NONCE_BYTES]
    assert len(a) == NONCE_BYTES + len(b"secret") + 16


@pytest.mark.parametrize("position", [0, NONCE_BYTES, -1])
def test_any_flipped_bit_is_detected(position: int) -> None:
    key = new_key()
    blob = bytearray(seal(key, b"annual_tax=123", b"ctx"))
    blob[position] ^= 1
    with pytest.raises(TamperedData):
        unseal(key, bytes(blob), b"ctx")


def test_wrong_context_or_key_is_detected() -> None:
    key = new_key()
    blob = seal(key, b"x", b"ds_1|v1")
    with pytest.raises(TamperedData):
        unseal(key, blob, b"ds_1|v2")
    with pytest.raises(TamperedData):
        unseal(new_key(), blob, b"ds_1|v1")


def test_master_key_wraps_bound_to_context() -> None:
    master = MasterKey(new_key())
    data_key = new_key()
    wrapped = master.wrap(data_key, "dataset-key|ds_a")
    assert master.unwrap(wrapped, "dataset-key|ds_a") == data_key
    with pytest.raises(TamperedData):
        master.unwrap(wrapped, "dataset-key|ds_b")
    assert data_key.hex() not in repr(master) and master.key.hex() not in repr(master)


def _write(path: Path, key: bytes, chunks: list[bytes], context: str = "k|ds|v1") -> None:
    w = SealedWriter(path, key, context)
    for c in chunks:
        w.write(c)
    w.commit()


def _records(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each record in a sealed file."""
    data = path.read_bytes()
    out, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "little")
        out.append((pos, 5 + length))
        pos += 5 + length
    return out


def test_sealed_file_round_trip(tmp_path: Path) -> None:
    key = new_key()
    _write(tmp_path / "f", key, [b"a" * 10, b"b" * 3, b"c"])
    assert list(read_sealed(tmp_path / "f", key, "k|ds|v1")) == [b"a" * 10, b"b" * 3, b"c"]
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("attack", ["truncate_last", "drop_middle", "swap", "append_copy",
                                    "flip_flag", "other_version"])
def test_sealed_file_structure_attacks(tmp_path: Path, attack: str) -> None:
    key = new_key()
    path = tmp_path / "f"
    _write(path, key, [b"one", b"two", b"three"])
    data = path.read_bytes()
    recs = [data[o:o + n] for o, n in _records(path)]
    head = data[:8]
    context = "k|ds|v1"
    if attack == "truncate_last":
        data = head + recs[0] + recs[1]
    elif attack == "drop_middle":
        data = head + recs[0] + recs[2]
    elif attack == "swap":
        data = head + recs[1] + recs[0] + recs[2]
    elif attack == "append_copy":
        data = data + recs[2]
    elif attack == "flip_flag":
        r = bytearray(recs[1])
        r[4] = 1
        data = head + recs[0] + bytes(r)
    else:
        context = "k|ds|v2"
    path.write_bytes(data)
    with pytest.raises(TamperedData):
        list(read_sealed(path, key, context))


def test_aborted_writer_leaves_nothing(tmp_path: Path) -> None:
    w = SealedWriter(tmp_path / "f", new_key(), "c")
    w.write(b"plaintext never hits disk")
    w.abort()
    assert list(tmp_path.iterdir()) == []
