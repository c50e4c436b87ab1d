"""Checking a live stream against the ledger: every segment its playlists list.

`verify_stream(master_url, fetch, verify_key)` walks the multivariant playlist to every media
playlist and segment (`hls_reader`), pins the feed's signed tree head, and for each segment
fetches its bytes and inclusion proof. A segment passes only if: the proof's head is signed by
the log key and is the pinned head or consistent with it (`trusted_heads.HeadBook`); the proof's
leaf names this feed/rendition/seq; the audit path leads from the leaf to the head's root; and
the segment's size and SHA-256 equal the leaf's (and its EXT-X-PROGRAM-DATE-TIME, when the
playlist gives one, equals the leaf's).

Which key to trust is the caller's decision (`known_keys` pins it on first use).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from nacl.signing import VerifyKey

from .http_client import Fetch, consistency_fetcher, fetch_head, fetch_json, ledger_base_for
from .hls_reader import SegmentRef, walk_hls
from .leaf import LeafError, LeafFields, decode_leaf, format_pdt
from .merkle import leaf_hash
from .proofs import ProofError, verify_inclusion
from .tree_head import SignedTreeHead, TreeHeadError
from .trusted_heads import HeadBook
from .verify_report import Report, SegmentResult


class SegmentFailure(Exception):
    """One segment did not verify; the message is the reason shown in the table."""


def check_segment(
    data: bytes,
    proof: dict[str, Any],
    book: HeadBook,
    feed: str,
    rendition: str,
    seq: int,
    program_date_time: datetime | None = None,
) -> LeafFields:
    """Raise `SegmentFailure` with the reason unless the segment verifies; return its leaf."""
    try:
        head = SignedTreeHead.from_json(proof["tree_head"])
        leaf = bytes.fromhex(proof["leaf"])
        index = proof["leaf_index"]
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError("leaf_index is not an integer")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise SegmentFailure(f"malformed proof: {e}") from None
    try:
        book.accept(head)
    except TreeHeadError as e:
        raise SegmentFailure(f"tree head not trusted: {type(e).__name__}: {e}") from None
    try:
        fields = decode_leaf(leaf)
    except LeafError as e:
        raise SegmentFailure(f"malformed leaf: {e}") from None
    if (fields.feed, fields.rendition, fields.seq) != (feed, rendition, seq):
        raise SegmentFailure(
            f"proof is for {fields.feed}/{fields.rendition}/{fields.seq}, not this segment"
        )
    try:
        verify_inclusion(index, head.tree_size, leaf_hash(leaf), path, head.root_hash)
    except ProofError as e:
        raise SegmentFailure(f"not in the log: {e}") from None
    if len(data) != fields.size:
        raise SegmentFailure(f"size {len(data)} bytes, ledger says {fields.size}")
    digest = hashlib.sha256(data).digest()
    if digest != fields.sha256:
        raise SegmentFailure(
            f"bytes differ from the ledger (sha256 {digest.hex()[:16]}…, "
            f"ledger {fields.sha256.hex()[:16]}…)"
        )
    if program_date_time is not None and format_pdt(program_date_time) != fields.program_date_time:
        raise SegmentFailure(
            f"playlist program date-time {format_pdt(program_date_time)} differs from the "
            f"ledger's {fields.program_date_time}"
        )
    return fields


def verify_stream(
    master_url: str,
    fetch: Fetch,
    verify_key: VerifyKey,
    ledger_base: str | None = None,
) -> Report:
    """Check every segment reachable from `master_url` against the ledger (see module doc).

    `ledger_base` (`http://HOST:PORT/ledger/FEED`) overrides the ledger of the playlists' server.
    """
    report = Report()
    try:
        refs = walk_hls(master_url, fetch)
    except Exception as e:  # noqa: BLE001 - transport or parse: either way nothing to check
        report.fatal = f"cannot read playlists: {e}"
        return report
    if not refs:
        report.fatal = "the playlists list no segments"
        return report
    by_feed: dict[str, list[SegmentRef]] = {}
    for ref in refs:
        by_feed.setdefault(ref.feed, []).append(ref)
    for feed, feed_refs in by_feed.items():
        base = ledger_base or ledger_base_for(master_url, feed)
        try:
            pinned = fetch_head(fetch, base)
            book = HeadBook(pinned, verify_key, consistency_fetcher(fetch, base))
        except Exception as e:  # noqa: BLE001
            report.fatal = f"no trusted tree head for {feed}: {type(e).__name__}: {e}"
            report.results += [SegmentResult(r.name, False, report.fatal) for r in feed_refs]
            continue
        report.head = report.head or pinned
        for ref in feed_refs:
            report.results.append(_check_ref(ref, fetch, base, book))
    return report


def _check_ref(ref: SegmentRef, fetch: Fetch, base: str, book: HeadBook) -> SegmentResult:
    try:
        data = fetch(ref.url)
    except Exception as e:  # noqa: BLE001
        return SegmentResult(ref.name, False, f"cannot fetch segment: {e}")
    proof_url = f"{base}/proof/{ref.rendition}/{ref.seq}"
    try:
        # Pinned head first (the proof is then against the head already checked); a segment
        # newer than the pinned head is proven against a later head, checked for consistency.
        try:
            proof = fetch_json(fetch, f"{proof_url}?tree_size={book.pinned.tree_size}")
        except Exception:  # noqa: BLE001
            proof = fetch_json(fetch, proof_url)
    except Exception as e:  # noqa: BLE001
        return SegmentResult(ref.name, False, f"no proof: {e}")
    try:
        check_segment(data, proof, book, ref.feed, ref.rendition, ref.seq, ref.program_date_time)
    except SegmentFailure as e:
        return SegmentResult(ref.name, False, str(e))
    return SegmentResult(ref.name, True)
