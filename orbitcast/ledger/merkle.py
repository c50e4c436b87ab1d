"""RFC 6962 Merkle tree hash and an incremental tree that keeps every full subtree.

Hashes (RFC 6962 section 2.1, RFC 9162 section 2.1.1):
    MTH({})       = SHA-256()
    MTH({d0})     = SHA-256(0x00 || d0)
    MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])),  k = largest power of two < n

Storage: level h holds the hash of every *full* aligned subtree of 2**h leaves, i.e. node i of
level h covers leaves [i * 2**h, (i + 1) * 2**h). Every range the RFC recursion ever asks for
(the root of any prefix, the siblings of an audit path, the pieces of a consistency proof)
starts at a multiple of a power of two at least as large as itself, so it is either one stored
node or one stored node plus a smaller range of the same kind: O(log n) lookups. Appending
adds one leaf and, on average, one parent per level it completes: amortized O(1) hashes.
The total is < 2n stored hashes. Each level is one `bytearray` of 32-byte hashes rather than a
list of `bytes` objects, which would cost ~3x the memory at a million leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one leaf's data (the 0x00 prefix tells leaves from nodes)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an interior node from its children's hashes."""
    return _sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n >= 2): the RFC 6962 split point, not the midpoint."""
    if n < 2:
        raise ValueError(f"no split for a tree of {n} leaves")
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 6962 tree over leaf hashes; roots and proofs for any prefix size."""

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> "MerkleTree":
        """Build bottom-up in O(n): every level is hashed once from the one below."""
        tree = cls()
        level0 = bytearray()
        for h in hashes:
            if len(h) != HASH_SIZE:
                raise ValueError("leaf hash must be 32 bytes")
            level0 += h
        tree._levels = [level0]
        tree._size = len(level0) // HASH_SIZE
        below = level0
        while len(below) >= 2 * HASH_SIZE:
            above = bytearray()
            pairs = len(below) // (2 * HASH_SIZE)
            for i in range(pairs):
                o = 2 * HASH_SIZE * i
                above += _sha256(NODE_PREFIX + below[o : o + 2 * HASH_SIZE]).digest()
            tree._levels.append(above)
            below = above
        return tree

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> "MerkleTree":
        return cls.from_leaf_hashes(leaf_hash(d) for d in leaves)

    def append_leaf(self, data: bytes) -> int:
        """Append a leaf's data; return its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, h: bytes) -> int:
        """Append a leaf hash; return its index. Completes every subtree the leaf closes."""
        if len(h) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        index = self._size
        levels = self._levels
        levels[0] += h
        self._size += 1
        n = index + 1
        level = 0
        # The new leaf closes a subtree at level+1 exactly while n is divisible by 2**(level+1).
        while n & 1 == 0:
            below = levels[level]
            parent = _sha256(NODE_PREFIX + below[-2 * HASH_SIZE :]).digest()
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += parent
            n >>= 1
        return index

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._size

    @property
    def size(self) -> int:
        return self._size

    def leaf_hash_at(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise IndexError(f"leaf {index} outside a tree of {self._size}")
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _node(self, level: int, index: int) -> bytes:
        o = index * HASH_SIZE
        return bytes(self._levels[level][o : o + HASH_SIZE])

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range the RFC recursion produces (start aligned, see above)."""
        n = end - start
        if n <= 0:
            if n == 0:
                return EMPTY_ROOT
            raise ValueError("empty or negative range")
        if end > self._size:
            raise ValueError(f"range end {end} beyond tree size {self._size}")
        # Peel full subtrees off the left; fold the right-hand chain back up at the end.
        lefts: list[bytes] = []
        while True:
            if n & (n - 1) == 0 and start % n == 0:
                node = self._node(n.bit_length() - 1, start // n)
                break
            k = largest_power_of_two_below(n)
            if start % k:
                raise ValueError(f"range [{start}, {end}) is not one the RFC recursion produces")
            lefts.append(self._node(k.bit_length() - 1, start // k))
            start += k
            n -= k
        for left in reversed(lefts):
            node = node_hash(left, node)
        return node

    def root(self, size: int | None = None) -> bytes:
        """The tree head hash of the first `size` leaves (default: all). O(log n)."""
        size = self._size if size is None else size
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} outside 0..{self._size}")
        return self.range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]): sibling hashes from the leaf up. O(log n)."""
        size = self._size if size is None else size
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} outside 0..{self._size}")
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} outside a tree of {size}")
        path: list[bytes] = []
        start, end, m = 0, size, index
        # Walk down from the root recording siblings, then reverse: the proof lists them leaf-up.
        while end - start > 1:
            k = largest_power_of_two_below(end - start)
            if m < k:
                path.append(self.range_hash(start + k, end))
                end = start + k
            else:
                path.append(self.range_hash(start, start + k))
                start += k
                m -= k
        path.reverse()
        return path

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 6962 PROOF(first, D[0:second]) (section 2.1.2). O(log n)."""
        second = self._size if second is None else second
        if not 0 <= second <= self._size:
            raise ValueError(f"size {second} outside 0..{self._size}")
        if not 0 <= first <= second:
            raise ValueError(f"first size {first} outside 0..{second}")
        if first == 0 or first == second:
            return []
        proof: list[bytes] = []
        start, end, m, whole = 0, second, first, True
        while True:
            n = end - start
            if m == n:
                if not whole:
                    proof.append(self.range_hash(start, end))
                break
            k = largest_power_of_two_below(n)
            if m <= k:
                proof.append(self.range_hash(start + k, end))
                end = start + k
            else:
                proof.append(self.range_hash(start, start + k))
                start += k
                m -= k
                whole = False
        proof.reverse()
        return proof


def reference_root(leaves: list[bytes]) -> bytes:
    """The RFC 6962 definition, recursively, on leaf data. O(n log n): for checks only."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = largest_power_of_two_below(n)
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))
