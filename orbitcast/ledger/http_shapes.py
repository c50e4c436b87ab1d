"""The JSON of the ledger's HTTP routes, and a router, so the Serve deployment stays a shim.

Routes (all GET, all JSON, all hashes and signatures lowercase hex):

    /ledger/pubkey
        {"algorithm": "Ed25519", "public_key": hex32, "key_id": sha256(public_key) hex}
    /ledger/{feed}/sth
        {"version": 1, "feed", "tree_size", "timestamp" (ms since epoch), "root_hash", "signature"}
    /ledger/{feed}/proof/{rendition}/{seq}[?tree_size=N]
        {"feed", "leaf_index", "leaf" (canonical leaf bytes, hex),
         "leaf_fields": {"version", "feed", "rendition", "seq", "program_date_time", "size", "sha256"},
         "audit_path": [hex, ...] (leaf to root), "tree_head": <sth>}
        Against the signed head of size N when given (an auditor pins one head), else the latest.
    /ledger/{feed}/consistency?first=N&second=M
        {"feed", "first", "second", "proof": [hex, ...]}
    /ledger/{feed}/entries?start=N&end=M           (like CT get-entries; at most 1000 a page)
        {"feed", "start", "end", "entries": [leaf hex, ...]}
        An auditor with every entry up to a head recomputes its root: one check for all leaves
        (this is how a recording is verified).

Errors: {"error": message} with 400 (malformed), 404 (unknown feed / leaf / head, or a leaf not
yet covered by a signed head), 409 never from a GET. Never a stack trace, never a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from nacl.signing import VerifyKey

from .leaf import NAME_RE
from .log import FeedLedger, LedgerError, UnknownLeaf
from .tree_head import SignedTreeHead, key_id

MAX_ENTRIES = 1000
_INT_RE = re.compile(r"0|[1-9][0-9]{0,18}")
IMMUTABLE = "public, max-age=31536000, immutable"
FRESH = "no-cache"


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(LedgerError):
    status = 400


def parse_uint(name: str, text: str | None) -> int:
    if text is None or not _INT_RE.fullmatch(text):
        raise BadRequest(f"{name} must be a non-negative integer")
    value = int(text)
    if value >= 1 << 63:
        raise BadRequest(f"{name} is too large")
    return value


def _name(kind: str, text: str) -> str:
    # A leading dot is path syntax ("." / ".." after URL decoding), never a feed or rung name.
    if not NAME_RE.fullmatch(text) or text.startswith("."):
        raise BadRequest(f"malformed {kind}")
    return text


def pubkey_json(verify_key: VerifyKey) -> dict[str, Any]:
    return {"algorithm": "Ed25519", "public_key": bytes(verify_key).hex(), "key_id": key_id(verify_key)}


def sth_json(ledger: FeedLedger) -> dict[str, Any]:
    head: SignedTreeHead | None = ledger.latest_head
    if head is None:
        raise UnknownLeaf(f"{ledger.feed} has no signed tree head yet")
    return head.to_json()


def proof_json(
    ledger: FeedLedger, rendition: str, seq: int, tree_size: int | None = None
) -> dict[str, Any]:
    return ledger.proof(rendition, seq, tree_size)


def consistency_json(ledger: FeedLedger, first: int, second: int) -> dict[str, Any]:
    proof = ledger.consistency(first, second)
    return {"feed": ledger.feed, "first": first, "second": second, "proof": [h.hex() for h in proof]}


def entries_json(ledger: FeedLedger, start: int, end: int) -> dict[str, Any]:
    size = ledger.size
    if not 0 <= start <= end:
        raise BadRequest("need 0 <= start <= end")
    end = min(end, size, start + MAX_ENTRIES)
    if start > end:
        raise UnknownLeaf(f"start {start} is beyond the log's {size} entries")
    return {
        "feed": ledger.feed,
        "start": start,
        "end": end,
        "entries": [leaf.hex() for leaf in ledger.leaves(start, end)],
    }


def route(
    ledgers: Mapping[str, FeedLedger],
    verify_key: VerifyKey,
    path: str,
    query: Mapping[str, str] | None = None,
) -> Response:
    """Answer one GET under /ledger/. `path` is the URL path (with or without `/ledger`)."""
    query = query or {}
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "ledger":
        parts = parts[1:]
    try:
        if parts == ["pubkey"]:
            return Response(200, pubkey_json(verify_key), {"Cache-Control": "public, max-age=300"})
        if not parts:
            raise UnknownLeaf("no such route")
        feed = _name("feed", parts[0])
        ledger = ledgers.get(feed)
        if ledger is None:
            raise UnknownLeaf(f"unknown feed {feed}")
        rest = parts[1:]
        if rest == ["sth"]:
            return Response(200, sth_json(ledger), {"Cache-Control": FRESH})
        if len(rest) == 3 and rest[0] == "proof":
            rendition = _name("rendition", rest[1])
            seq = parse_uint("seq", rest[2])
            size_text = query.get("tree_size")
            tree_size = None if size_text is None else parse_uint("tree_size", size_text)
            body = proof_json(ledger, rendition, seq, tree_size)
            cache = IMMUTABLE if tree_size is not None else FRESH
            return Response(200, body, {"Cache-Control": cache})
        if rest == ["consistency"]:
            first = parse_uint("first", query.get("first"))
            second = parse_uint("second", query.get("second"))
            return Response(200, consistency_json(ledger, first, second), {"Cache-Control": IMMUTABLE})
        if rest == ["entries"]:
            start = parse_uint("start", query.get("start"))
            end = parse_uint("end", query.get("end"))
            body = entries_json(ledger, start, end)
            whole = body["end"] - body["start"] == min(end - start, MAX_ENTRIES)
            return Response(200, body, {"Cache-Control": IMMUTABLE if whole else FRESH})
        raise UnknownLeaf("no such route")
    except LedgerError as e:
        return Response(e.status, {"error": str(e)}, {"Cache-Control": "no-store"})
