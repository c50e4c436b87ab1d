"""Which tree heads (and log entries) a verification trusts.

A verification pins the feed's current signed head; every other head it meets (a proof for a
segment newer than the pin comes with a later head) is trusted only once it is signed by the
log key and shown consistent with the pin. A complete list of entries is trusted when it hashes
to a signed root: one O(n) check that authenticates every leaf at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nacl.signing import VerifyKey

from .leaf import LeafFields, decode_leaf
from .merkle import MerkleTree, leaf_hash
from .tree_head import SignedTreeHead, TreeHeadError, check_consistent


class HeadBook:
    """The heads a verification trusts: the pinned one, and any other shown consistent with it.

    `consistency(first, second)` returns the proof hashes between two sizes (injected HTTP).
    """

    def __init__(
        self,
        pinned: SignedTreeHead,
        verify_key: VerifyKey,
        consistency: Callable[[int, int], list[bytes]],
    ) -> None:
        pinned.verify(verify_key)
        self.pinned = pinned
        self._key = verify_key
        self._consistency = consistency
        self._trusted: dict[tuple[int, bytes], SignedTreeHead] = {
            (pinned.tree_size, pinned.root_hash): pinned
        }

    def accept(self, head: SignedTreeHead) -> None:
        """Raise `TreeHeadError` (BadSignature / LogShrank / InconsistentHeads) unless trusted."""
        if self._trusted.get((head.tree_size, head.root_hash)) == head:
            return
        head.verify(self._key)
        if head.feed != self.pinned.feed:
            raise TreeHeadError(f"head of feed {head.feed}, expected {self.pinned.feed}")
        if (head.tree_size, head.root_hash) not in self._trusted:
            # Order by time so that a later, smaller head is reported as a shrinking log.
            a, b = sorted((self.pinned, head), key=lambda h: (h.timestamp_ms, h.tree_size))
            small, large = sorted((a.tree_size, b.tree_size))
            try:
                proof = self._consistency(small, large) if b.tree_size >= a.tree_size else []
            except Exception as e:  # noqa: BLE001 - injected transport: any failure is a reason
                raise TreeHeadError(f"no consistency proof {small} -> {large}: {e}") from None
            check_consistent(a, b, proof, self._key)
        self._trusted[(head.tree_size, head.root_hash)] = head


def verify_entries(
    entries: Sequence[bytes], head: SignedTreeHead, verify_key: VerifyKey
) -> list[LeafFields]:
    """Authenticate a full list of log entries [0, head.tree_size) against a signed head."""
    head.verify(verify_key)
    if len(entries) != head.tree_size:
        raise TreeHeadError(f"{len(entries)} entries for a head of size {head.tree_size}")
    tree = MerkleTree.from_leaf_hashes(leaf_hash(e) for e in entries)
    if tree.root() != head.root_hash:
        raise TreeHeadError("the entries do not hash to the signed root")
    return [decode_leaf(e) for e in entries]
