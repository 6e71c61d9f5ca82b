"""Unit tests of saferoom.uscc: both check characters, the vectorized scan, the generator.
Known codes come from public registrations; the scan is pinned to is_valid by Hypothesis.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saferoom import uscc

# Published codes: the worked example of GB 32100 and well-known firms' codes as printed in
# public sources (Huawei's as cited on Wikipedia).
KNOWN_VALID = [
    "91350100M000100Y43",  # the standard's example
    "914403001922038216",  # 华为技术有限公司
    "91330100716105852F",  # 阿里巴巴（中国）网络技术有限公司
    "91440300708461136T",  # 腾讯科技（深圳）有限公司
    "91310000132260250X",  # 上海汽车集团股份有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
]
LUOYANG = ["410302", "410303", "410305", "410311", "410323"]


def _replace(code: str, i: int, c: str) -> str:
    return code[:i] + c + code[i + 1 :]


def _with_checks(first16: str) -> str:
    """Complete 16 characters into a valid code by computing both check characters."""
    first17 = first16 + uscc.org_check_character(first16[8:])
    return first17 + uscc.check_character(first17)


def _expected_first_invalid(values: list[str | None]) -> int | None:
    return next((i for i, v in enumerate(values) if v is None or not uscc.is_valid(v)), None)


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_codes_are_valid(code: str) -> None:
    assert uscc.is_valid(code)
    assert uscc.check_character(code[:17]) == code[17]
    assert uscc.org_check_character(code[8:16]) == code[16]


def test_the_standards_worked_example_with_a_wrong_check_fails() -> None:
    # GB 32100's example: 91350100M000100Y4Z is wrong; the check character must be 3.
    assert not uscc.is_valid("91350100M000100Y4Z")
    assert uscc.check_character("91350100M000100Y4") == "3"


def test_check_character_edge_values() -> None:
    # 31 - (sum mod 31) == 31 maps to '0'; GB 11714's 10 maps to 'X' and 11 to '0'.
    assert uscc.check_character("0" * 17) == "0"
    assert uscc.org_check_character("00000000") == "0"
    body_x = next(f"{i:08d}" for i in range(1000) if uscc.org_check_character(f"{i:08d}") == "X")
    assert uscc.is_valid(_with_checks("91410300" + body_x))


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_every_single_character_change_fails(code: str) -> None:
    others = [*uscc.ALPHABET, "I", "O", "Z", "S", "V", "a", "x", "-", " ", "０", "洛"]
    for i in range(len(code)):
        for c in others:
            if c != code[i]:
                assert not uscc.is_valid(_replace(code, i, c)), (i, c)


def test_both_check_characters_matter() -> None:
    code = KNOWN_VALID[1]
    # A wrong organisation-code check with a final check recomputed to match it.
    wrong_org = next(c for c in "0123456789X" if c != code[16])
    forged = code[:16] + wrong_org
    forged += uscc.check_character(forged)
    assert not uscc.is_valid(forged)
    assert uscc.first_invalid(pa.array([code, forged])) == 1
    # A right organisation-code check with a wrong final check.
    wrong_final = next(c for c in uscc.ALPHABET if c != code[17])
    assert not uscc.is_valid(code[:17] + wrong_final)


def test_positions_3_to_8_must_be_digits() -> None:
    code = _with_checks("91A10300" + "MA123456")
    assert not uscc.is_valid(code)
    assert uscc.first_invalid(pa.array([KNOWN_VALID[0], code])) == 1


@pytest.mark.parametrize(
    "bad", ["", "9" * 17, "9" * 19, KNOWN_VALID[0].lower(), "91350100M000100Y4３"]
)
def test_malformed_codes_fail(bad: str) -> None:
    assert not uscc.is_valid(bad)


def test_helpers_reject_malformed_input() -> None:
    with pytest.raises(ValueError, match="17"):
        uscc.check_character("91350100M000100Y")
    with pytest.raises(ValueError, match="17"):
        uscc.check_character("91350100I000100Y4")
    with pytest.raises(ValueError, match="8"):
        uscc.org_check_character("m0001000")


# Strategy: a mix of valid codes and every way a value can be wrong.
_VALID = st.text(alphabet=uscc.ALPHABET, min_size=8, max_size=8).flatmap(
    lambda body: st.sampled_from(LUOYANG).map(lambda d: _with_checks("91" + d + body))
)
_NEAR = st.tuples(_VALID, st.integers(0, 17), st.sampled_from([*uscc.ALPHABET, "I", "z", "é"])).map(
    lambda t: _replace(t[0], t[1], t[2])
)
_VALUES = st.one_of(
    _VALID,
    _VALID,
    _NEAR,
    _VALID.map(str.lower),
    st.none(),
    st.text(alphabet=uscc.ALPHABET, min_size=0, max_size=20),
    st.text(min_size=17, max_size=19),  # any Unicode, incl. non-ASCII of 18 chars
    _VALID.map(lambda c: c[:17] + "洛"),  # 18 characters but 20 bytes
    _VALID.map(lambda c: c[:16] + "é"),  # 17 characters but 18 bytes
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(_VALUES, max_size=40),
    large=st.booleans(),
    cut=st.integers(0, 5),
    chunks=st.integers(1, 3),
)
def test_first_invalid_agrees_with_is_valid(
    values: list[str | None], large: bool, cut: int, chunks: int
) -> None:
    arrow_type = pa.large_string() if large else pa.string()
    padded = ["91350100M000100Y43"] * cut + values
    # Slicing leaves a non-zero array offset: the scan has to honour it.
    arr = pa.array(padded, type=arrow_type).slice(cut)
    assert uscc.first_invalid(arr) == _expected_first_invalid(values)
    bounds = np.linspace(0, len(values), chunks + 1).astype(int)
    chunked = pa.chunked_array(
        [pa.array(values[a:b], type=arrow_type) for a, b in itertools.pairwise(bounds)],
        type=arrow_type,
    )
    assert uscc.first_invalid(chunked) == _expected_first_invalid(values)


def test_first_invalid_on_other_arrow_layouts() -> None:
    values = [*KNOWN_VALID, "91350100M000100Y4Z"]
    assert uscc.first_invalid(pa.array(values).dictionary_encode()) == len(KNOWN_VALID)
    assert uscc.first_invalid(pa.array(values, type=pa.string_view())) == len(KNOWN_VALID)
    assert uscc.first_invalid(pa.array([v.encode() for v in values])) == len(KNOWN_VALID)
    assert uscc.first_invalid(pa.array([], type=pa.string())) is None
    assert uscc.first_invalid(pa.chunked_array([], type=pa.string())) is None
    assert uscc.first_invalid(pa.array(["", ""])) == 0
    with pytest.raises(TypeError):
        uscc.first_invalid(pa.array([914403001922038216]))


def test_first_invalid_finds_late_errors_across_blocks() -> None:
    codes = uscc.generate(np.random.default_rng(1), 200_000, LUOYANG)
    assert uscc.first_invalid(pa.array(codes)) is None
    for bad_at in (0, 32_767, 32_768, 150_001, 199_999):
        broken = codes.copy()
        broken[bad_at] = _replace(broken[bad_at], 17, "0" if broken[bad_at][17] != "0" else "1")
        assert uscc.first_invalid(pa.array(broken)) == bad_at
        assert uscc.first_invalid(pa.array(broken, type=pa.large_string())[1:]) == (
            bad_at - 1 if bad_at else None
        )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000))
def test_generate_yields_distinct_valid_codes(seed: int, n: int) -> None:
    codes = uscc.generate(np.random.default_rng(seed), n, LUOYANG)
    assert len(codes) == n
    assert len(set(codes)) == n
    assert all(uscc.is_valid(c) for c in codes)
    assert all(c[0] == "9" and c[2:8] in LUOYANG for c in codes)
    assert uscc.first_invalid(pa.array(codes)) is None


def test_generate_shapes_and_defaults() -> None:
    rng = np.random.default_rng(7)
    codes = uscc.generate(rng, 20_000)
    assert all(c[2:5] == "999" for c in codes)  # no real division starts with 99
    types = np.array([c[1] for c in codes])
    assert (types == "1").mean() > 0.8
    assert set(types) == {"1", "2", "3"}
    assert len(set(codes)) == len(codes)
    assert uscc.generate(np.random.default_rng(3), 50, LUOYANG).tolist() == (
        uscc.generate(np.random.default_rng(3), 50, LUOYANG).tolist()
    )
    for bad in (["41030"], ["4103OO"], [], "410311"):
        with pytest.raises((ValueError, TypeError)):
            uscc.generate(rng, 1, bad)
    with pytest.raises(ValueError, match="non-negative"):
        uscc.generate(rng, -1)


@pytest.mark.slow
def test_a_million_generated_codes_are_valid_and_distinct() -> None:
    codes = uscc.generate(np.random.default_rng(0), 1_000_000, LUOYANG)
    assert len(set(codes)) == len(codes)
    assert uscc.first_invalid(pa.array(codes, type=pa.string())) is None
