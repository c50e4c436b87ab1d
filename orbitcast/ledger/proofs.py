"""Inclusion and consistency proofs: generation (from a `MerkleTree`) and verification.

Verification follows the algorithms of RFC 9162 section 2.1.3.2 (inclusion) and 2.1.4.2
(consistency) step by step, so that a proof this module accepts is one any CT verifier
accepts, and vice versa. Failures raise `ProofError` with the step that failed, because a
verifier's report should say *why* a segment did not check out.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from .merkle import HASH_SIZE, MerkleTree, node_hash


class ProofError(ValueError):
    """A proof does not verify (or is malformed)."""


def inclusion_proof(tree: MerkleTree, index: int, size: int | None = None) -> list[bytes]:
    return tree.inclusion_proof(index, size)


def consistency_proof(tree: MerkleTree, first: int, second: int | None = None) -> list[bytes]:
    return tree.consistency_proof(first, second)


def _check_hashes(name: str, hashes: Sequence[bytes]) -> None:
    for h in hashes:
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise ProofError(f"{name}: every element must be a 32-byte hash")


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: Sequence[bytes]
) -> bytes:
    """RFC 9162 2.1.3.2 steps 1-5, returning the computed root (callers compare it)."""
    _check_hashes("leaf hash", [leaf_hash])
    _check_hashes("inclusion path", path)
    if leaf_index < 0 or tree_size < 0 or leaf_index >= tree_size:  # step 1
        raise ProofError(f"leaf index {leaf_index} is not inside a tree of {tree_size}")
    fn, sn = leaf_index, tree_size - 1  # step 2
    r = bytes(leaf_hash)  # step 3
    for p in path:  # step 4
        if sn == 0:  # 4a: the path is longer than the tree is tall
            raise ProofError("inclusion path is too long for the tree size")
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    if sn != 0:  # step 5
        raise ProofError("inclusion path is too short for the tree size")
    return r


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: Sequence[bytes], root: bytes
) -> None:
    """Raise `ProofError` unless `path` proves leaf `leaf_index` in the tree with `root`."""
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, path)
    if not hmac.compare_digest(computed, bytes(root)):
        raise ProofError("inclusion path leads to a different root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> None:
    """Raise `ProofError` unless `path` proves the tree of `first` is a prefix of `second`.

    RFC 9162 2.1.4.2. The trivial cases it leaves to the caller are decided here: sizes that go
    backwards fail; equal sizes need equal roots and an empty proof; an empty first tree is a
    prefix of everything, with an empty proof.
    """
    _check_hashes("roots", [first_root, second_root])
    _check_hashes("consistency path", path)
    if first < 0 or second < 0:
        raise ProofError("negative tree size")
    if first > second:
        raise ProofError(f"tree of {second} cannot extend a tree of {first}")
    if first == second:
        if path:
            raise ProofError("consistency path must be empty for equal sizes")
        if not hmac.compare_digest(bytes(first_root), bytes(second_root)):
            raise ProofError("two heads of the same size have different roots")
        return
    if first == 0:
        if path:
            raise ProofError("consistency path from the empty tree must be empty")
        return
    if not path:  # step 1
        raise ProofError("consistency path is empty")
    proof = list(path)
    if first & (first - 1) == 0:  # step 2: first is an exact power of two
        proof.insert(0, bytes(first_root))
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]  # step 5
    for c in proof[1:]:  # step 6
        if sn == 0:  # 6a
            raise ProofError("consistency path is too long")
        if fn & 1 or fn == sn:  # 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    # step 7
    if sn != 0:
        raise ProofError("consistency path is too short")
    if not hmac.compare_digest(fr, bytes(first_root)):
        raise ProofError("consistency path does not lead to the first root")
    if not hmac.compare_digest(sr, bytes(second_root)):
        raise ProofError("consistency path does not lead to the second root")
