"""Unified social credit codes (统一社会信用代码, GB 32100-2015): validate, vectorize, generate.
Both check characters are enforced: GB 11714's at position 17 and GB 32100's at position 18.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = [
    "ALPHABET",
    "LENGTH",
    "check_character",
    "first_invalid",
    "generate",
    "is_valid",
    "org_check_character",
]

# GB 32100 table 1: digits and capitals without I, O, Z, S, V (easily misread as 1, 0, 2, 5, U).
ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_DIGITS: Final = "0123456789"
LENGTH: Final = 18

# GB 32100 table 2: W_i = 3^(i-1) mod 31, for positions 1..17.
_WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))
# GB 11714: weights of the eight body characters of an organisation code.
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)
# GB 11714's own character set is 0-9A-Z, each letter worth A=10 ... Z=35 (I and O included).
_ORG_BODY_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_INDEX: Final = {c: i for i, c in enumerate(ALPHABET)}
_ORG_VALUE: Final = {c: i for i, c in enumerate(_ORG_BODY_ALPHABET)}

# Position 2 under registration authority 9 (industry & commerce): 1 enterprise,
# 2 individual business (个体工商户), 3 farmers' cooperative (农民专业合作社).
_ORG_TYPES: Final = np.frombuffer(b"123", dtype=np.uint8)
_ORG_TYPE_P: Final = (0.90, 0.07, 0.03)

# An organisation code body: since 2015 market regulation assigns "MA" + 6 characters; older
# firms kept their numeric 8-digit code. Both shapes occur in live registries.
_NEW_STYLE_SHARE: Final = 0.75


# A byte outside the alphabet looks up as _BAD: its top three bits are set, which no index
# (0..30) has, so one bitwise test over 8-byte words finds stray characters in bulk.
_BAD: Final = 0xE0
# Positions 3-8 must be digits. Adding 22 keeps digit indices (0..9) at 22..31 but lifts
# letters (10..30) to 32..52 and _BAD to 246: all non-digits then show a top bit too.
_DIGIT_SHIFT: Final = 22


def _byte_table(chars: str, values: Sequence[int], missing: int) -> npt.NDArray[np.uint8]:
    """256-entry lookup: byte -> value; `missing` for bytes outside `chars` (incl. non-ASCII)."""
    table = np.full(256, missing, dtype=np.uint8)
    for c, v in zip(chars, values, strict=True):
        table[ord(c)] = v
    return table


_LUT_INDEX: Final = _byte_table(ALPHABET, range(len(ALPHABET)), _BAD)
# Inside a USCC the body must also be in ALPHABET, so only those letters need an org value;
# other bytes are already caught by _LUT_INDEX.
_LUT_ORG_VALUE: Final = _byte_table(ALPHABET, [_ORG_VALUE[c] for c in ALPHABET], 0)
_ALPHABET_BYTES: Final = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
# Org check value 11 - (sum mod 11) is in 1..11; index it directly: 10 -> 'X', 11 -> '0'.
_ORG_CHECK_BYTES: Final = np.frombuffer(b"?123456789X0", dtype=np.uint8)
# Weighted sums use einsum in int32, not a BLAS matmul: BLAS threads stall on a busy host
# (3-4x slower, measured), and every sum here stays below 2**18.
_W18: Final = np.array([*_WEIGHTS, 0], dtype=np.int32)
_W8: Final = np.array(_ORG_WEIGHTS, dtype=np.int32)
_SHIFT_TOTAL: Final = _DIGIT_SHIFT * sum(_WEIGHTS[2:8])
_WORD_BAD: Final = np.uint64(int.from_bytes(bytes([_BAD]) * 8, "little"))
_BLOCK_ROWS: Final = 1 << 15
_IDX_TO_ORG_VALUE: Final = np.array([_ORG_VALUE[c] for c in ALPHABET], dtype=np.int16)
_PLACES: Final = 31 ** np.arange(7, -1, -1, dtype=np.int64)


def _weighted(
    values: npt.NDArray[np.integer[Any]], weights: npt.NDArray[np.int32]
) -> npt.NDArray[np.int32]:
    """Row sums of values x weights, exact in int32."""
    out: npt.NDArray[np.int32] = np.einsum("ij,j->i", values, weights, dtype=np.int32)
    return out


def _org_check_value(total: int) -> str:
    r = 11 - total % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def org_check_character(first8: str) -> str:
    """The GB 11714 check character of an organisation code body (8 chars of 0-9A-Z)."""
    if len(first8) != 8 or any(c not in _ORG_VALUE for c in first8):
        raise ValueError("an organisation code body is 8 characters of 0-9 and A-Z")
    return _org_check_value(
        sum(_ORG_VALUE[c] * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    )


def check_character(first17: str) -> str:
    """The GB 32100 check character (position 18) of the first 17 characters of a code."""
    if len(first17) != 17 or any(c not in _INDEX for c in first17):
        raise ValueError(f"the first 17 characters of a code come from {ALPHABET!r}")
    return ALPHABET[-sum(_INDEX[c] * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 31]


def is_valid(code: str) -> bool:
    """True when `code` is 18 characters of ALPHABET with both check characters right."""
    if len(code) != LENGTH or any(c not in _INDEX for c in code):
        return False
    if any(c not in _DIGITS for c in code[2:8]):
        return False
    # Some codes issued in error fail these checks (reported for a few Fujian registrations);
    # the standard is the contract here, so a registry holding one has to correct it.
    return org_check_character(code[8:16]) == code[16] and check_character(code[:17]) == code[17]


def _first_bad_row(data: npt.NDArray[np.uint8], k: int) -> int | None:
    """First invalid row of `k` back-to-back 18-byte codes in `data`, or None."""
    size = LENGTH * k
    # Padded to whole 8-byte words (with valid zeros) so the scan below can view it as uint64.
    buf = np.zeros(-(-size // 8) * 8, dtype=np.uint8)
    np.take(_LUT_INDEX, data, out=buf[:size])
    idx = buf[:size].reshape(k, LENGTH)
    idx[:, 2:8] += _DIGIT_SHIFT
    first = k
    words = np.flatnonzero(buf.view(np.uint64) & _WORD_BAD)
    if len(words):
        w = int(words[0])
        j = int(np.flatnonzero(buf[8 * w : 8 * w + 8] & _BAD)[0])
        first = (8 * w + j) // LENGTH
    # Rows with stray bytes get meaningless sums below; they are already counted above.
    mat = data.reshape(k, LENGTH)
    org_sum = _weighted(_LUT_ORG_VALUE[mat[:, 8:16]], _W8)
    bad = _ORG_CHECK_BYTES[11 - org_sum % 11] != mat[:, 16]
    total = _weighted(idx, _W18)
    bad |= (_SHIFT_TOTAL - total) % 31 != idx[:, 17]
    if bad[:first].any():
        first = int(bad.argmax())
    return first if first < k else None


def _first_invalid_chunk(arr: pa.Array) -> int | None:
    n = len(arr)
    if n == 0:
        return None
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string_view(arr.type) or pa.types.is_binary_view(arr.type):
        arr = arr.cast(pa.large_binary())
    if pa.types.is_string(arr.type) or pa.types.is_binary(arr.type):
        offset_dtype = "<i4"  # Arrow buffers are little-endian
    elif pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type):
        offset_dtype = "<i8"
    else:
        raise TypeError(f"expected an Arrow string or binary array, got {arr.type}")
    validity, offsets_buf, data_buf = arr.buffers()
    # Offsets are shared with the parent array when sliced, so start at arr.offset.
    offsets = np.frombuffer(offsets_buf, dtype=offset_dtype)[arr.offset : arr.offset + n + 1]
    bad_shape = np.diff(offsets) != LENGTH
    if validity is not None and arr.null_count:
        bad_shape |= ~np.asarray(arr.is_valid())
    # Up to the first null or wrong length every value is 18 bytes, so those rows sit back to
    # back in the data buffer and reshape into a matrix without copying.
    k = int(bad_shape.argmax()) if bad_shape.any() else n
    if k:
        start = int(offsets[0])
        data = np.frombuffer(data_buf, dtype=np.uint8)[start : start + LENGTH * k]
        # Blocks keep the temporaries cache-sized (a single pass over 1M rows would allocate
        # ~100 MB) and stop at the first block holding a bad row.
        for lo in range(0, k, _BLOCK_ROWS):
            rows = min(_BLOCK_ROWS, k - lo)
            bad_row = _first_bad_row(data[LENGTH * lo : LENGTH * (lo + rows)], rows)
            if bad_row is not None:
                return lo + bad_row
    return k if k < n else None


def first_invalid(values: pa.Array | pa.ChunkedArray) -> int | None:
    """Index of the first null or invalid code in `values`, or None when all are valid.

    Vectorized: a million codes take tens of milliseconds. Accepts string, large string,
    string view, binary or dictionary-encoded string arrays; anything else is a TypeError.
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    seen = 0
    for chunk in chunks:
        i = _first_invalid_chunk(chunk)
        if i is not None:
            return seen + i
        seen += len(chunk)
    return None


def _parse_divisions(division_codes: Sequence[str]) -> npt.NDArray[np.uint8]:
    if isinstance(division_codes, str):
        raise TypeError("division_codes is a sequence of 6-digit codes, not one string")
    if not division_codes:
        raise ValueError("division_codes is empty")
    for d in division_codes:
        if len(d) != 6 or any(c not in _DIGITS for c in d):
            raise ValueError(f"a division code is 6 ASCII digits, got {d!r}")
    raw = "".join(division_codes).encode("ascii")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 6)


def _draw_bodies(rng: np.random.Generator, n: int) -> npt.NDArray[np.int16]:
    """(n, 8) alphabet indices of organisation code bodies, both historical shapes."""
    new_style = rng.random(n) < _NEW_STYLE_SHARE
    body = rng.integers(0, len(ALPHABET), size=(n, 8), dtype=np.int16)
    digits = rng.integers(0, 10, size=(n, 8), dtype=np.int16)
    body[~new_style] = digits[~new_style]
    body[new_style, 0] = _INDEX["M"]
    body[new_style, 1] = _INDEX["A"]
    return body


def _body_keys(body: npt.NDArray[np.int16]) -> npt.NDArray[np.int64]:
    """Bodies as base-31 numbers (< 31^8, fits int64): equal keys, equal bodies."""
    keys: npt.NDArray[np.int64] = body.astype(np.int64) @ _PLACES
    return keys


def _distinct_bodies(rng: np.random.Generator, n: int) -> npt.NDArray[np.int16]:
    """(n, 8) organisation code bodies, pairwise distinct as GB 11714 codes are nationally."""
    body = _draw_bodies(rng, n)
    keys = _body_keys(body)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    repeat = np.zeros(n, dtype=bool)
    repeat[1:] = sorted_keys[1:] == sorted_keys[:-1]
    kept = sorted_keys[~repeat]
    redo = order[repeat]
    # A birthday collision hits a few hundred rows in a million: redraw only those, checked
    # against the sorted keys already kept, until none is left.
    while len(redo):
        fresh = _draw_bodies(rng, len(redo))
        fresh_keys = _body_keys(fresh)
        pos = np.searchsorted(kept, fresh_keys)
        # `kept` is never empty here: every repeat has its first occurrence kept.
        taken = kept[np.minimum(pos, len(kept) - 1)] == fresh_keys
        _, first = np.unique(fresh_keys, return_index=True)
        ok = np.zeros(len(redo), dtype=bool)
        ok[first] = True
        ok &= ~taken
        body[redo[ok]] = fresh[ok]
        new_keys = np.sort(fresh_keys[ok])
        kept = np.insert(kept, np.searchsorted(kept, new_keys), new_keys)
        redo = redo[~ok]
    return body


def generate(
    rng: np.random.Generator, n: int, division_codes: Sequence[str] | None = None
) -> npt.NDArray[np.object_]:
    """`n` distinct valid codes of industry-and-commerce registrants (first character 9).

    Division codes (positions 3-8) are drawn uniformly from `division_codes`. Without them,
    the division is "999" + 3 random digits: checksum-valid but matching no real division, so
    such a code can never be a real enterprise's (right for mock rows; pass real divisions
    for realistic data). Organisation code bodies are distinct, hence so are the codes.
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    if division_codes is None:
        divisions = np.full((n, 6), ord("9"), dtype=np.uint8)
        divisions[:, 3:] = rng.integers(ord("0"), ord("9") + 1, size=(n, 3), dtype=np.uint8)
    else:
        table = _parse_divisions(division_codes)
        divisions = table[rng.integers(0, len(table), size=n)]

    body = _distinct_bodies(rng, n)
    org_type = rng.choice(_ORG_TYPES, size=n, p=_ORG_TYPE_P)
    mat = np.empty((n, LENGTH), dtype=np.uint8)
    mat[:, 0] = ord("9")
    mat[:, 1] = org_type
    mat[:, 2:8] = divisions
    mat[:, 8:16] = _ALPHABET_BYTES[body]
    org_sum = _weighted(_IDX_TO_ORG_VALUE[body], _W8)
    mat[:, 16] = _ORG_CHECK_BYTES[11 - org_sum % 11]
    # Sums in index space over the parts drawn above: cheaper than re-reading all 17 bytes.
    # Types and division characters are digits, whose index is their value.
    total = (
        _INDEX["9"] * _WEIGHTS[0]
        + (org_type - ord("0")).astype(np.int32) * _WEIGHTS[1]
        + _weighted(divisions - ord("0"), _W18[2:8])
        + _weighted(body, _W18[8:16])
        + _LUT_INDEX[mat[:, 16]].astype(np.int32) * _WEIGHTS[16]
    )
    mat[:, 17] = _ALPHABET_BYTES[(-total) % 31]
    codes: npt.NDArray[np.object_] = mat.view("S18").ravel().astype("U18").astype(object)
    return codes
