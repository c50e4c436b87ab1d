"""RFC 6962 tree hashes and proofs against the Certificate Transparency reference vectors."""

from __future__ import annotations

import hashlib

import pytest

from orbitcast.ledger.merkle import EMPTY_ROOT, MerkleTree, largest_power_of_two_below, leaf_hash
from orbitcast.ledger.proofs import ProofError, verify_consistency, verify_inclusion

# Published by Certificate Transparency's reference implementation (and transparency-dev/merkle
# testonly): the 8 leaves, the root of each prefix 0..8, and a few inclusion/consistency proofs.
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
CT_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf index, tree size, path)
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# (first, second, path)
CT_CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


# An independent, naive reading of RFC 6962 section 2.1, straight from the definitions.
def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def naive_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return naive_path(m, d[:k]) + [naive_mth(d[k:])]
    return naive_path(m - k, d[k:]) + [naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return naive_subproof(m, d[:k], b) + [naive_mth(d[k:])]
    return naive_subproof(m - k, d[k:], False) + [naive_mth(d[:k])]


def built(leaves: list[bytes]) -> list[MerkleTree]:
    """The same tree made both ways: appended one by one, and built bottom-up."""
    appended = MerkleTree()
    for leaf in leaves:
        appended.append_leaf(leaf)
    return [appended, MerkleTree.from_leaves(leaves)]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == CT_ROOTS[0] == MerkleTree().root()


@pytest.mark.parametrize("n", range(9))
def test_roots_of_0_to_8_leaves_match_ct(n: int) -> None:
    for tree in built(CT_LEAVES[:n]):
        assert tree.root() == CT_ROOTS[n]
    assert naive_mth(CT_LEAVES[:n]) == CT_ROOTS[n]


def test_prefix_roots_from_the_full_tree() -> None:
    for tree in built(CT_LEAVES):
        assert [tree.root(n) for n in range(9)] == CT_ROOTS


def test_split_is_the_largest_power_of_two_below_n() -> None:
    assert [largest_power_of_two_below(n) for n in (2, 3, 4, 5, 7, 8, 9, 1000)] == [
        1, 2, 2, 4, 4, 4, 8, 512,
    ]


@pytest.mark.parametrize("index,size,path", CT_INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    want = [bytes.fromhex(h) for h in path]
    for tree in built(CT_LEAVES):
        assert tree.inclusion_proof(index, size) == want
    verify_inclusion(index, size, leaf_hash(CT_LEAVES[index]), want, CT_ROOTS[size])


@pytest.mark.parametrize("first,second,path", CT_CONSISTENCY)
def test_published_consistency_proofs(first: int, second: int, path: list[str]) -> None:
    want = [bytes.fromhex(h) for h in path]
    for tree in built(CT_LEAVES):
        assert tree.consistency_proof(first, second) == want
    verify_consistency(first, second, CT_ROOTS[first], CT_ROOTS[second], want)


def test_every_inclusion_proof_of_the_8_leaf_tree() -> None:
    for tree in built(CT_LEAVES):
        for size in range(1, 9):
            for i in range(size):
                path = tree.inclusion_proof(i, size)
                assert path == naive_path(i, CT_LEAVES[:size])
                verify_inclusion(i, size, leaf_hash(CT_LEAVES[i]), path, CT_ROOTS[size])


def test_consistency_between_every_pair_of_sizes_up_to_8() -> None:
    for tree in built(CT_LEAVES):
        for second in range(0, 9):
            for first in range(0, second + 1):
                proof = tree.consistency_proof(first, second)
                if 0 < first < second:
                    assert proof == naive_subproof(first, CT_LEAVES[:second], True)
                else:
                    assert proof == []
                verify_consistency(first, second, CT_ROOTS[first], CT_ROOTS[second], proof)


def test_larger_trees_agree_with_the_naive_definition() -> None:
    leaves = [i.to_bytes(2, "big") for i in range(70)]
    tree_a, tree_b = built(leaves)
    for n in range(71):
        assert tree_a.root(n) == tree_b.root(n) == naive_mth(leaves[:n])
    for i in range(0, 70, 7):
        assert tree_a.inclusion_proof(i, 70) == naive_path(i, leaves)
    for m in range(1, 70, 5):
        assert tree_b.consistency_proof(m, 70) == naive_subproof(m, leaves, True)


# -- proofs that must fail ---------------------------------------------------------------------

TREE = MerkleTree.from_leaves(CT_LEAVES)


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 8]) + h[1:]


@pytest.mark.parametrize("index", range(8))
def test_inclusion_rejects_wrong_index_root_leaf_and_altered_path(index: int) -> None:
    path = TREE.inclusion_proof(index, 8)
    lh = leaf_hash(CT_LEAVES[index])
    verify_inclusion(index, 8, lh, path, CT_ROOTS[8])
    bad = [
        (index ^ 1, 8, lh, path, CT_ROOTS[8]),  # wrong index
        ((index + 1) % 8, 8, lh, path, CT_ROOTS[8]),
        (index, 8, lh, path, CT_ROOTS[7]),  # wrong root
        (index, 8, lh, path, EMPTY_ROOT),
        (index, 8, leaf_hash(b"wrong"), path, CT_ROOTS[8]),  # wrong leaf
        (index, 16, lh, path, CT_ROOTS[8]),  # wrong size
        (index, 8, lh, path[:-1], CT_ROOTS[8]),  # removed component
        (index, 8, lh, path + [CT_ROOTS[8]], CT_ROOTS[8]),  # trailing root
        (index, 8, lh, [CT_ROOTS[8]] + path, CT_ROOTS[8]),  # preceding root
        (8, 8, lh, path, CT_ROOTS[8]),  # index outside the tree
    ]
    bad += [
        (index, 8, lh, path[:j] + [_flip(path[j])] + path[j + 1 :], CT_ROOTS[8])
        for j in range(len(path))
    ]
    for args in bad:
        with pytest.raises(ProofError):
            verify_inclusion(*args)


def test_consistency_rejects_tampering() -> None:
    for first, second in [(1, 8), (3, 7), (6, 8), (2, 5), (4, 8), (5, 6)]:
        proof = TREE.consistency_proof(first, second)
        r1, r2 = CT_ROOTS[first], CT_ROOTS[second]
        verify_consistency(first, second, r1, r2, proof)
        bad = [
            (first - 1, second, r1, r2, proof),
            (first + 1, second, r1, r2, proof) if first + 1 < second else None,
            (first, second * 2, r1, r2, proof),
            (first, second, r2, r2, proof),  # wrong first root
            (first, second, r1, r1, proof),  # wrong second root
            (first, second, r2, r1, proof),  # swapped
            (first, second, r1, r2, []),
            (first, second, r1, r2, proof[:-1]),
            (first, second, r1, r2, proof + [r2]),
            (first, second, r1, r2, [r1] + proof),
            (second, first, r2, r1, proof),  # going backwards
        ]
        bad += [
            (first, second, r1, r2, proof[:j] + [_flip(proof[j])] + proof[j + 1 :])
            for j in range(len(proof))
        ]
        for args in bad:
            if args is None:
                continue
            with pytest.raises(ProofError):
                verify_consistency(*args)


def test_equal_sizes_need_equal_roots() -> None:
    verify_consistency(5, 5, CT_ROOTS[5], CT_ROOTS[5], [])
    with pytest.raises(ProofError):
        verify_consistency(5, 5, CT_ROOTS[5], CT_ROOTS[6], [])


def test_proof_sizes_beyond_the_tree_are_refused() -> None:
    with pytest.raises(ValueError):
        TREE.inclusion_proof(0, 9)
    with pytest.raises(ValueError):
        TREE.consistency_proof(3, 9)
    with pytest.raises(ValueError):
        TREE.root(9)
