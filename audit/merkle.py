"""RFC 9162 section 2.1 Merkle trees: hashes, roots, inclusion and consistency proofs.

`Frontier` folds a growing log in O(log n) memory; `MerkleTree` also answers past sizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d); the prefix keeps leaves and nodes apart."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The compact range [0, size): one perfect-subtree hash per set bit of size."""

    __slots__ = ("_nodes", "_size")

    def __init__(self) -> None:
        self._nodes: list[bytes] = []
        self._size = 0

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; merges the equal-sized subtrees it completes (O(1) amortised)."""
        node, n = leaf, self._size
        while n & 1:
            node = node_hash(self._nodes.pop(), node)
            n >>= 1
        self._nodes.append(node)
        self._size += 1

    def root(self) -> bytes:
        """MTH of the leaves so far: the perfect subtrees folded right to left."""
        if not self._nodes:
            return EMPTY_ROOT
        acc = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            acc = node_hash(node, acc)
        return acc


class MerkleTree:
    """Every perfect, aligned subtree hash, level by level (about 2n hashes for n leaves).

    Any RFC 9162 subtree splits into O(log n) of these, so roots at past sizes and proofs
    cost O(log n) without rehashing the log.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        for leaf in leaves:
            self.append(leaf)

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf must be a 32-byte leaf hash")
        levels = self._levels
        levels[0] += leaf
        node, index, level = leaf, self._size, 0
        # Each odd index completes a pair: store the parent one level up, and carry on.
        while index & 1:
            left = bytes(levels[level][(index - 1) * HASH_SIZE : index * HASH_SIZE])
            node = node_hash(left, node)
            level += 1
            if len(levels) == level:
                levels.append(bytearray())
            levels[level] += node
            index >>= 1
        self._size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """`append` each leaf in turn, but a level at a time: each level grows by one join,
        not a copy, a concatenation and a loop step per node (about half the cost)."""
        if any(len(leaf) != HASH_SIZE for leaf in leaves):
            raise ValueError("a leaf must be a 32-byte leaf hash")
        levels, pair = self._levels, 2 * HASH_SIZE
        lo, hi = self._size, self._size + len(leaves)  # nodes on this level, before and after
        levels[0] += b"".join(leaves)
        level = 0
        # The new leaves complete the parents lo // 2 .. hi // 2 - 1 one level up, and so on.
        while lo >> 1 < hi >> 1:
            row = levels[level]
            # node_hash(left, right), with the pair sliced from the row as one 64-byte piece.
            parents = b"".join(
                hashlib.sha256(b"\x01" + row[i : i + pair]).digest()
                for i in range((lo >> 1) * pair, (hi >> 1) * pair, pair)
            )
            level += 1
            if len(levels) == level:
                levels.append(bytearray())
            levels[level] += parents
            lo, hi = lo >> 1, hi >> 1
        self._size += len(leaves)

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]); the current root when size is None."""
        n = self._size_or_current(size)
        return EMPTY_ROOT if n == 0 else self._subtree(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 2.1.3.1."""
        n = self._size_or_current(size)
        self._check_index(index, n)
        path: list[bytes] = []
        lo, hi, m = 0, n, index
        while hi - lo > 1:
            k = _split(hi - lo)
            if m < k:
                path.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._subtree(lo, lo + k))
                lo, m = lo + k, m - k
        # Built top-down; the RFC lists the deepest sibling first.
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) of RFC 9162 2.1.4.1; empty when old_size is 0 or n."""
        n = self._size_or_current(new_size)
        if not 0 <= old_size <= n:
            raise ValueError("old_size must be between 0 and the new size")
        if old_size in (0, n):
            return []
        proof: list[bytes] = []
        lo, hi, m, known = 0, n, old_size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._subtree(lo, lo + k))
                lo, m, known = lo + k, m - k, False
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}; with b true the verifier already has it.
        if not known:
            proof.append(self._subtree(lo, hi))
        proof.reverse()
        return proof

    def _subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for the ranges the RFC recursion visits (lo aligned to the split)."""
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            level = n.bit_length() - 1
            row = self._levels[level]
            start = (lo >> level) * HASH_SIZE
            return bytes(row[start : start + HASH_SIZE])
        k = _split(n)
        return node_hash(self._subtree(lo, lo + k), self._subtree(lo + k, hi))

    def _size_or_current(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError("size is beyond the tree")
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise ValueError("leaf index is outside the tree")


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (the empty tree hashes to SHA-256 of nothing)."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    return MerkleTree(leaves).inclusion_proof(index)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) for the leaf hashes `leaves` (n = len(leaves))."""
    return MerkleTree(leaves).consistency_proof(old_size)


def verify_inclusion(
    index: int, size: int, leaf: bytes, root_hash: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.3.2: does `leaf` sit at `index` of the tree of `size` with `root_hash`?"""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree (old_size, old_root) a prefix of (new_size, new_root)?"""
    if not 0 <= old_size <= new_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    # The RFC defines proofs for 0 < m < n; the two edges need no proof at all.
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
