"""Merkle trees against RFC 9162 2.1: a literal recursive reference, known vectors, and proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# --- the RFC's definitions, transcribed literally (slow, obviously right) -------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]  # d holds leaf hashes already
    k = _k(len(d))
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


# --- tests ----------------------------------------------------------------------------------


def test_hash_prefixes_separate_leaves_from_nodes():
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


def test_known_vectors_from_certificate_transparency():
    # The eight inputs and roots used by the RFC 6962 reference implementations' tests.
    inputs = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    expected = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    hashed = [leaf_hash(bytes.fromhex(x)) for x in inputs]
    assert [root(hashed[: n + 1]).hex() for n in range(8)] == expected


@pytest.mark.parametrize("n", range(21))
def test_roots_match_the_recursive_definition(n):
    d = leaves(n)
    tree = MerkleTree(d)
    frontier = Frontier()
    for leaf in d:
        frontier.append(leaf)
    assert root(d) == ref_mth(d) == tree.root() == frontier.root()
    # Every past size is answerable from the one tree.
    assert [tree.root(m) for m in range(n + 1)] == [ref_mth(d[:m]) for m in range(n + 1)]


def test_inclusion_proofs_for_every_leaf_up_to_40():
    for n in range(1, 41):
        d = leaves(n)
        r = ref_mth(d)
        for m in range(n):
            proof = inclusion_proof(d, m)
            assert proof == ref_path(m, d)
            assert verify_inclusion(m, n, d[m], r, proof)
            assert not verify_inclusion(m, n, flip(d[m]), r, proof)
            assert not verify_inclusion(m, n, d[m], flip(r), proof)
            if proof:
                assert not verify_inclusion(m, n, d[m], r, [flip(proof[0]), *proof[1:]])
                assert not verify_inclusion(m, n, d[m], r, proof[:-1])
            if n > 1:
                assert not verify_inclusion((m + 1) % n, n, d[m], r, proof)


def test_consistency_proofs_for_every_pair_up_to_40():
    for n in range(1, 41):
        d = leaves(n)
        tree = MerkleTree(d)
        new_root = ref_mth(d)
        for m in range(1, n + 1):
            old_root = ref_mth(d[:m])
            proof = consistency_proof(d, m)
            assert proof == (ref_subproof(m, d, True) if m < n else [])
            assert tree.consistency_proof(m) == proof
            assert verify_consistency(m, n, old_root, new_root, proof)
            assert not verify_consistency(m, n, flip(old_root), new_root, proof)
            assert not verify_consistency(m, n, old_root, flip(new_root), proof)
            for i in range(len(proof)):
                altered = [*proof[:i], flip(proof[i]), *proof[i + 1 :]]
                assert not verify_consistency(m, n, old_root, new_root, altered)
            if proof:
                assert not verify_consistency(m, n, old_root, new_root, proof[:-1])
                assert not verify_consistency(m, n, old_root, new_root, [*proof, proof[-1]])


def test_consistency_edges():
    d = leaves(5)
    assert verify_consistency(0, 5, EMPTY_ROOT, root(d), [])
    assert not verify_consistency(0, 5, flip(EMPTY_ROOT), root(d), [])
    assert not verify_consistency(3, 2, root(d[:3]), root(d[:2]), [])
    assert not verify_consistency(5, 5, root(d), root(d), [root(d)])
    assert not verify_consistency(2, 5, root(d[:2]), root(d), [])
    with pytest.raises(ValueError, match="old_size"):
        consistency_proof(d, 6)


def test_a_rewritten_history_has_no_consistency_proof():
    old = leaves(10)
    forged = [*old[:6], *leaves(20)[15:]]  # same size-6 prefix, different after
    proof = consistency_proof(forged, 8)
    assert not verify_consistency(8, len(forged), root(old[:8]), root(forged), proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1500), st.data())
def test_random_sizes(n, data):
    d = leaves(n)
    tree = MerkleTree(d)
    m = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, n - 1))
    assert tree.root() == root(d)
    assert verify_consistency(m, n, tree.root(m), tree.root(), tree.consistency_proof(m))
    assert verify_inclusion(index, n, d[index], tree.root(), tree.inclusion_proof(index))
    if index < m:
        assert verify_inclusion(index, m, d[index], tree.root(m), tree.inclusion_proof(index, m))
    bad = data.draw(st.integers(0, n - 1))
    forged = [*d[:bad], flip(d[bad]), *d[bad + 1 :]]
    if bad < m:
        assert root(forged[:m]) != tree.root(m)
        proof = consistency_proof(forged, m)
        assert not verify_consistency(m, n, tree.root(m), root(forged), proof)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 70), max_size=8))
def test_extend_builds_the_tree_append_builds(batch_sizes):
    d = leaves(sum(batch_sizes))
    one_by_one, in_batches = MerkleTree(), MerkleTree()
    start = 0
    for n in batch_sizes:
        for leaf in d[start : start + n]:
            one_by_one.append(leaf)
        in_batches.extend(d[start : start + n])
        start += n
        assert in_batches.root() == one_by_one.root() == root(d[:start])
    for m in range(start + 1):
        assert in_batches.root(m) == one_by_one.root(m)
        assert in_batches.consistency_proof(m) == one_by_one.consistency_proof(m)
    for index in range(start):
        assert in_batches.inclusion_proof(index) == one_by_one.inclusion_proof(index)


def test_extend_refuses_a_bad_leaf_and_changes_nothing():
    tree = MerkleTree(leaves(5))
    with pytest.raises(ValueError):
        tree.extend([*leaves(3), b"short"])
    assert tree.root() == root(leaves(5))
    tree.extend(leaves(7)[5:])
    assert tree.root() == root(leaves(7))
