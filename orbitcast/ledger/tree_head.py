"""Signed tree heads: a log's size, time and root hash, signed with the log's Ed25519 key.

The signed bytes are a fixed, versioned binary encoding (never JSON, whose field order and
number formatting are not canonical):

    b"orbitcast-sth" 0x00    domain separation: this key signs nothing else that looks alike
    u8   version (= 1)
    u8   len(feed)  feed     the log identity: a head of feed A is no evidence about feed B
    u64  tree_size
    u64  timestamp (ms since the Unix epoch, from the clock authority)
    32B  root hash

Three different failures matter to someone auditing the log, so they are three exceptions:
`BadSignature` (the head is not from the key holder), `LogShrank` (a later head is smaller: the
log lost entries), `InconsistentHeads` (the later tree does not extend the earlier one: the log
was rewritten or forked).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

from .leaf import check_name, LeafError
from .merkle import EMPTY_ROOT, HASH_SIZE
from .proofs import ProofError, verify_consistency

STH_VERSION = 1
_DOMAIN = b"orbitcast-sth\x00"
_SIZES = struct.Struct(">QQ")


class TreeHeadError(ValueError):
    """Base of every reason a tree head is not acceptable."""


class MalformedHead(TreeHeadError):
    """The head cannot be parsed (missing field, wrong length, bad hex)."""


class BadSignature(TreeHeadError):
    """The signature does not verify under the published key."""


class LogShrank(TreeHeadError):
    """A later head has a smaller tree than an earlier one."""


class InconsistentHeads(TreeHeadError):
    """Two heads whose trees are not prefix-consistent (a rewritten or forked log)."""


def key_id(verify_key: VerifyKey) -> str:
    """A short, stable name of a public key: SHA-256 of its 32 bytes, hex."""
    return hashlib.sha256(bytes(verify_key)).hexdigest()


def signed_bytes(feed: str, tree_size: int, timestamp_ms: int, root_hash: bytes) -> bytes:
    f = feed.encode("ascii")
    return b"".join(
        (_DOMAIN, bytes((STH_VERSION, len(f))), f, _SIZES.pack(tree_size, timestamp_ms), root_hash)
    )


@dataclass(frozen=True)
class SignedTreeHead:
    feed: str
    tree_size: int
    timestamp_ms: int
    root_hash: bytes
    signature: bytes
    version: int = STH_VERSION

    def __post_init__(self) -> None:
        if self.version != STH_VERSION:
            raise MalformedHead(f"unknown tree head version {self.version}")
        try:
            check_name("feed", self.feed)
        except LeafError as e:
            raise MalformedHead(str(e)) from None
        for name in ("tree_size", "timestamp_ms"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 64:
                raise MalformedHead(f"{name} {v!r} is not an unsigned 64-bit integer")
        if len(self.root_hash) != HASH_SIZE:
            raise MalformedHead("root hash must be 32 bytes")
        if len(self.signature) != 64:
            raise MalformedHead("signature must be 64 bytes")

    @classmethod
    def sign(
        cls, signing_key: SigningKey, feed: str, tree_size: int, timestamp_ms: int, root_hash: bytes
    ) -> "SignedTreeHead":
        msg = signed_bytes(feed, tree_size, timestamp_ms, root_hash)
        return cls(feed, tree_size, timestamp_ms, bytes(root_hash), signing_key.sign(msg).signature)

    def message(self) -> bytes:
        return signed_bytes(self.feed, self.tree_size, self.timestamp_ms, self.root_hash)

    def verify(self, verify_key: VerifyKey) -> "SignedTreeHead":
        """Return self if signed by `verify_key`, else raise `BadSignature`."""
        try:
            verify_key.verify(self.message(), self.signature)
        except (BadSignatureError, CryptoError, ValueError):
            raise BadSignature(
                f"tree head of {self.feed} at size {self.tree_size}: signature does not verify"
            ) from None
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "feed": self.feed,
            "tree_size": self.tree_size,
            "timestamp": self.timestamp_ms,
            "root_hash": self.root_hash.hex(),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "SignedTreeHead":
        try:
            return cls(
                feed=obj["feed"],
                tree_size=obj["tree_size"],
                timestamp_ms=obj["timestamp"],
                root_hash=bytes.fromhex(obj["root_hash"]),
                signature=bytes.fromhex(obj["signature"]),
                version=obj.get("version", STH_VERSION),
            )
        except MalformedHead:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise MalformedHead(f"tree head JSON: {e!r}") from None

    def encode(self) -> bytes:
        """Message + signature: how the store keeps heads (decode with `decode`)."""
        return self.message() + self.signature

    @classmethod
    def decode(cls, data: bytes) -> "SignedTreeHead":
        data = bytes(data)
        if not data.startswith(_DOMAIN) or len(data) < len(_DOMAIN) + 2:
            raise MalformedHead("not an orbitcast tree head")
        pos = len(_DOMAIN)
        version, n = data[pos], data[pos + 1]
        pos += 2
        feed_raw = data[pos : pos + n]
        pos += n
        if len(data) != pos + _SIZES.size + HASH_SIZE + 64:
            raise MalformedHead("tree head has the wrong length")
        try:
            feed = feed_raw.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedHead("feed is not ASCII") from None
        size, ts = _SIZES.unpack_from(data, pos)
        pos += _SIZES.size
        root = data[pos : pos + HASH_SIZE]
        sig = data[pos + HASH_SIZE :]
        return cls(feed, size, ts, root, sig, version)


def stored_tree_size(data: bytes) -> int:
    """The tree size of an encoded head (`SignedTreeHead.encode`), read without decoding the
    rest: a ledger reloading a long log sorts its heads by size and decodes one when asked."""
    at = len(_DOMAIN) + 1
    if not data.startswith(_DOMAIN) or len(data) <= at:
        raise MalformedHead("not an orbitcast tree head")
    pos = at + 1 + data[at]
    if len(data) < pos + _SIZES.size:
        raise MalformedHead("tree head has the wrong length")
    return _SIZES.unpack_from(data, pos)[0]


def check_consistent(
    earlier: SignedTreeHead,
    later: SignedTreeHead,
    proof: Sequence[bytes],
    verify_key: VerifyKey,
) -> None:
    """Check that `later` extends `earlier`: both signed, same log, no shrink, proof verifies.

    `earlier` and `later` are in the order the auditor saw them (by timestamp). Raises
    `BadSignature`, `LogShrank` or `InconsistentHeads`; returns None when all is well.
    """
    earlier.verify(verify_key)
    later.verify(verify_key)
    if earlier.feed != later.feed:
        raise InconsistentHeads(f"heads of two logs: {earlier.feed} and {later.feed}")
    if later.tree_size < earlier.tree_size:
        raise LogShrank(
            f"{later.feed}: log shrank from {earlier.tree_size} to {later.tree_size} entries"
        )
    if earlier.tree_size == 0 and earlier.root_hash != EMPTY_ROOT:
        raise InconsistentHeads(f"{earlier.feed}: empty tree head with a non-empty root")
    try:
        verify_consistency(
            earlier.tree_size, later.tree_size, earlier.root_hash, later.root_hash, proof
        )
    except ProofError as e:
        raise InconsistentHeads(
            f"{later.feed}: head at size {later.tree_size} does not extend head at size "
            f"{earlier.tree_size}: {e}"
        ) from None
