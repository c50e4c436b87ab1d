"""The per-feed certification ledger the packager appends to and the Serve deployment reads.

One `FeedLedger` per feed: an RFC 6962 tree of canonical leaves, an index (rendition, seq) ->
leaf index, the signed tree heads it has issued, and (optionally) the append-only file behind
them. Thread-safe (one lock): a Serve replica may answer proofs while the packager appends.
"""

from __future__ import annotations

import logging
from hashlib import sha256
import threading
from typing import Any

from nacl.signing import SigningKey, VerifyKey

from .leaf import LeafFields, check_name, decode_leaf, leaf_key
from .merkle import MerkleTree
from .store import FeedLogFile, LogStore, Recovery, RecordKind
from .tree_head import BadSignature, MalformedHead, SignedTreeHead, stored_tree_size

log = logging.getLogger(__name__)


class LedgerError(LookupError):
    """A request the ledger cannot answer; `status` is the HTTP status it maps to."""

    status = 400


class UnknownLeaf(LedgerError):
    status = 404


class NotYetCertified(LedgerError):
    """The leaf exists but no signed head covers it yet (at most one segment duration)."""

    status = 404


class ConflictingLeaf(LedgerError):
    """Another leaf already holds this (rendition, seq): an append-only log never replaces."""

    status = 409


class FeedLedger:
    def __init__(
        self,
        feed: str,
        signing_key: SigningKey,
        store: LogStore | None = None,
    ) -> None:
        self.feed = check_name("feed", feed)
        self._key = signing_key
        self.verify_key: VerifyKey = signing_key.verify_key
        self._lock = threading.Lock()
        self._tree = MerkleTree()
        self._leaves: list[bytes] = []
        self._index: dict[tuple[str, int], int] = {}
        self._heads: dict[int, SignedTreeHead] = {}  # tree size -> latest head of that size
        # Heads reloaded from the log and not checked yet, by tree size, in the log's order:
        # checked when first asked for (`_resolve`), not all at a restart (see `_reload`).
        self._unchecked: dict[int, list[bytes]] = {}  # as stored: decoded when checked
        self._latest: SignedTreeHead | None = None
        self._file: FeedLogFile | None = None
        self.recovery: Recovery | None = None
        if store is not None:
            self._file, self.recovery = store.open(feed)
            self._reload(self.recovery)

    # -- restart ------------------------------------------------------------------------------

    def _reload(self, recovery: Recovery) -> None:
        """Rebuild from the stored records in O(n): decode leaves, build the tree bottom-up.

        A live log holds a head per segment duration, and checking each (its root recomputed,
        its signature verified) was two thirds of a restart: over 6 s for a day of one feed's three
        rungs, while the packagers' segments, and the parts behind them, waited for the ledger.
        Only the newest head that checks out is needed to go on; an older one is checked when a
        proof or a client first asks for its size. None is served unchecked."""
        hashes: list[bytes] = []
        heads: list[bytes] = []
        for kind, payload in recovery.records:
            if kind is RecordKind.LEAF:
                feed, rendition, seq = leaf_key(payload)
                if feed != self.feed:
                    raise ValueError(f"log of {self.feed} holds a leaf of {feed}")
                self._index[(rendition, seq)] = len(self._leaves)
                self._leaves.append(payload)
                hashes.append(sha256(b"\x00" + payload).digest())  # leaf_hash, inlined
            else:
                heads.append(payload)
        self._tree = MerkleTree.from_leaf_hashes(hashes)
        for payload in heads:
            try:
                self._unchecked.setdefault(stored_tree_size(payload), []).append(payload)
            except MalformedHead as err:
                log.warning("ledger %s: a stored head is unreadable: %s", self.feed, err)
        for size in sorted(self._unchecked, reverse=True):
            if self._resolve(size) is not None:
                break  # the newest head that checks out: `_latest`

    def _holds(self, head: SignedTreeHead) -> bool:
        """A head is only kept if it still describes this tree: signed by this key, for a size
        we hold, with the root we recompute. A head that fails is evidence of a problem, not
        something to serve."""
        if head.tree_size > self._tree.size or head.root_hash != self._tree.root(head.tree_size):
            return False
        try:
            head.verify(self.verify_key)
        except BadSignature:
            log.warning("ledger %s: stored head of size %d is not signed by this key",
                        self.feed, head.tree_size)
            return False
        return True

    def _resolve(self, tree_size: int) -> SignedTreeHead | None:
        """The head of `tree_size`, its reloaded candidates checked first (the last in the
        log that holds wins, as it did when all were checked at the restart)."""
        for payload in reversed(self._unchecked.pop(tree_size, ())):
            try:
                head = SignedTreeHead.decode(payload)
            except MalformedHead as err:
                log.warning("ledger %s: a stored head of size %d is unreadable: %s", self.feed, tree_size, err)
                continue
            if self._holds(head):
                self._remember(head)
                break
        return self._heads.get(tree_size)

    def _remember(self, head: SignedTreeHead) -> None:
        self._unchecked.pop(head.tree_size, None)  # those came before it in the log
        self._heads[head.tree_size] = head
        if self._latest is None or (head.tree_size, head.timestamp_ms) >= (
            self._latest.tree_size,
            self._latest.timestamp_ms,
        ):
            self._latest = head

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    # -- writing ------------------------------------------------------------------------------

    def append(self, segment: Any) -> int:
        """Enter one segment; return its leaf index.

        `segment` is a `LeafFields` or anything with the `Segment` attributes (feed, rendition,
        seq, program_date_time, size, digest). Idempotent for the exact same leaf (a retried
        hand-off gets the index it already has); a different leaf for a taken (rendition, seq)
        raises `ConflictingLeaf`.
        """
        fields = segment if isinstance(segment, LeafFields) else LeafFields.from_segment(segment)
        if fields.feed != self.feed:
            raise ValueError(f"segment of {fields.feed} appended to the ledger of {self.feed}")
        data = fields.encode()
        with self._lock:
            existing = self._index.get(fields.key)
            if existing is not None:
                if self._leaves[existing] == data:
                    return existing
                raise ConflictingLeaf(
                    f"{self.feed}/{fields.rendition}/{fields.seq} is already leaf {existing}"
                )
            # Durable first, then visible: a leaf that is in the tree is on disk.
            if self._file is not None:
                self._file.append(RecordKind.LEAF, data)
            index = self._tree.append_leaf(data)
            self._leaves.append(data)
            self._index[fields.key] = index
            return index

    def sign_head(self, timestamp_ms: int) -> SignedTreeHead:
        """Sign the current tree at `timestamp_ms` (from the clock authority) and keep it.

        Timestamps must not go backwards: a head older than the one before it would tell an
        auditor that time ran backwards in the log.
        """
        with self._lock:
            if self._latest is not None and timestamp_ms < self._latest.timestamp_ms:
                raise ValueError(
                    f"timestamp {timestamp_ms} is before the last head's {self._latest.timestamp_ms}"
                )
            size = self._tree.size
            head = SignedTreeHead.sign(self._key, self.feed, size, timestamp_ms, self._tree.root())
            if self._file is not None:
                self._file.append(RecordKind.TREE_HEAD, head.encode())
            self._remember(head)
            return head

    def sign_if_due(self, timestamp_ms: int, max_age_ms: int) -> SignedTreeHead | None:
        """Sign a new head when the tree grew or the last head is `max_age_ms` old; else None.

        The packager calls this after each segment with `max_age_ms` = the segment duration:
        every published segment is covered within one duration, and an idle log still shows a
        fresh head (a verifier can tell "nothing new" from "the log stopped answering").
        """
        last = self._latest
        if (
            last is None
            or last.tree_size != self._tree.size
            or timestamp_ms - last.timestamp_ms >= max_age_ms
        ):
            return self.sign_head(timestamp_ms)
        return None

    # -- reading ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def latest_head(self) -> SignedTreeHead | None:
        return self._latest

    def head_at(self, tree_size: int) -> SignedTreeHead | None:
        with self._lock:
            return self._resolve(tree_size)

    def root(self, tree_size: int | None = None) -> bytes:
        with self._lock:
            return self._tree.root(tree_size)

    def index_of(self, rendition: str, seq: int) -> int | None:
        return self._index.get((rendition, seq))

    def leaf(self, index: int) -> bytes:
        return self._leaves[index]

    def leaves(self, start: int, end: int) -> list[bytes]:
        return self._leaves[start:end]

    def proof(self, rendition: str, seq: int, tree_size: int | None = None) -> dict[str, Any]:
        """Inclusion proof of (rendition, seq) against a signed head.

        Against the head of `tree_size` if given (an auditor pinning one head), else the latest
        head. Raises `UnknownLeaf`, `NotYetCertified`, or `LedgerError` for a size with no head.
        """
        with self._lock:
            index = self._index.get((rendition, seq))
            if index is None:
                raise UnknownLeaf(f"no leaf for {self.feed}/{rendition}/{seq}")
            if tree_size is None:
                head = self._latest
                if head is None or head.tree_size <= index:
                    raise NotYetCertified(
                        f"{self.feed}/{rendition}/{seq} is leaf {index}; no signed head covers it yet"
                    )
            else:
                head = self._resolve(tree_size)
                if head is None:
                    raise UnknownLeaf(f"no signed tree head of size {tree_size}")
                if head.tree_size <= index:
                    raise NotYetCertified(
                        f"{self.feed}/{rendition}/{seq} is leaf {index}, beyond tree size {tree_size}"
                    )
            path = self._tree.inclusion_proof(index, head.tree_size)
            data = self._leaves[index]
        return {
            "feed": self.feed,
            "leaf_index": index,
            "leaf": data.hex(),
            "leaf_fields": decode_leaf(data).to_json(),
            "audit_path": [h.hex() for h in path],
            "tree_head": head.to_json(),
        }

    def consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 6962 consistency proof between two tree sizes (second <= current size)."""
        with self._lock:
            if not 0 <= first <= second <= self._tree.size:
                raise LedgerError(
                    f"need 0 <= first <= second <= {self._tree.size}, got {first}, {second}"
                )
            return self._tree.consistency_proof(first, second)
