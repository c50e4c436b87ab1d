"""The certification ledger: an RFC 6962 Merkle log of segment digests per feed, with
Ed25519-signed tree heads, inclusion and consistency proofs, crash-safe storage through
`pyarrow.fs`, and the verification behind `orbitcast verify`. Pure Python, no Ray."""

from .keys import load_or_create_signing_key
from .leaf import LeafError, LeafFields, decode_leaf, encode_leaf
from .log import ConflictingLeaf, FeedLedger, LedgerError, NotYetCertified, UnknownLeaf
from .merkle import EMPTY_ROOT, MerkleTree, leaf_hash, node_hash
from .proofs import ProofError, verify_consistency, verify_inclusion
from .store import LogStore, StoreError
from .tree_head import (
    BadSignature,
    InconsistentHeads,
    LogShrank,
    MalformedHead,
    SignedTreeHead,
    TreeHeadError,
    check_consistent,
)

__all__ = [
    "BadSignature",
    "ConflictingLeaf",
    "EMPTY_ROOT",
    "FeedLedger",
    "InconsistentHeads",
    "LeafError",
    "LeafFields",
    "LedgerError",
    "LogShrank",
    "LogStore",
    "MalformedHead",
    "MerkleTree",
    "NotYetCertified",
    "ProofError",
    "SignedTreeHead",
    "StoreError",
    "TreeHeadError",
    "UnknownLeaf",
    "check_consistent",
    "decode_leaf",
    "encode_leaf",
    "leaf_hash",
    "load_or_create_signing_key",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]
