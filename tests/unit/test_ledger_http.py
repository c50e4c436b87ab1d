"""The JSON shapes and statuses of the /ledger routes (the Serve deployment only forwards)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from nacl.signing import SigningKey

from orbitcast.ledger import FeedLedger, LeafFields, SignedTreeHead, verify_consistency
from orbitcast.ledger.http_shapes import MAX_ENTRIES, route

KEY = SigningKey(hashlib.sha256(b"http test").digest())
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def ledgers(n: int = 5) -> dict[str, FeedLedger]:
    lg = FeedLedger("iss", KEY)
    for seq in range(n):
        lg.append(LeafFields.of("iss", "720p", seq, T0, 100 + seq, hashlib.sha256(bytes([seq])).digest()))
    return {"iss": lg}


def test_pubkey_and_sth() -> None:
    lgs = ledgers()
    r = route(lgs, KEY.verify_key, "/ledger/pubkey")
    assert r.status == 200 and r.body["public_key"] == bytes(KEY.verify_key).hex()
    assert r.body["algorithm"] == "Ed25519" and len(r.body["key_id"]) == 64
    assert route(lgs, KEY.verify_key, "/ledger/iss/sth").status == 404  # nothing signed yet
    head = lgs["iss"].sign_head(42)
    r = route(lgs, KEY.verify_key, "/ledger/iss/sth")
    assert r.status == 200 and r.headers["Cache-Control"] == "no-cache"
    assert set(r.body) == {"version", "feed", "tree_size", "timestamp", "root_hash", "signature"}
    SignedTreeHead.from_json(r.body).verify(KEY.verify_key)
    assert r.body["timestamp"] == 42 and r.body["tree_size"] == head.tree_size == 5


def test_proof_and_consistency_routes() -> None:
    lgs = ledgers()
    lgs["iss"].sign_head(1)
    r = route(lgs, KEY.verify_key, "/ledger/iss/proof/720p/3")
    assert r.status == 200
    assert set(r.body) == {"feed", "leaf_index", "leaf", "leaf_fields", "audit_path", "tree_head"}
    pinned = route(lgs, KEY.verify_key, "/ledger/iss/proof/720p/3", {"tree_size": "5"})
    assert pinned.body == r.body and "immutable" in pinned.headers["Cache-Control"]
    c = route(lgs, KEY.verify_key, "/ledger/iss/consistency", {"first": "2", "second": "5"})
    assert c.status == 200 and c.body["first"] == 2 and c.body["second"] == 5
    verify_consistency(2, 5, lgs["iss"].root(2), lgs["iss"].root(5), [bytes.fromhex(h) for h in c.body["proof"]])


def test_entries_are_paged() -> None:
    lgs = ledgers(3)
    r = route(lgs, KEY.verify_key, "/ledger/iss/entries", {"start": "1", "end": "9"})
    assert r.status == 200 and r.body["start"] == 1 and r.body["end"] == 3
    assert [bytes.fromhex(e) for e in r.body["entries"]] == lgs["iss"].leaves(1, 3)
    assert MAX_ENTRIES >= 100


def test_errors_are_400_or_404_and_json() -> None:
    lgs = ledgers()
    lgs["iss"].sign_head(1)
    cases = {
        ("/ledger/mars/sth", ()): 404,
        ("/ledger/iss/proof/720p/99", ()): 404,
        ("/ledger/iss/proof/4k/1", ()): 404,
        ("/ledger/iss/proof/720p/-1", ()): 400,
        ("/ledger/iss/proof/720p/01", ()): 400,
        ("/ledger/iss/proof/720p/1", (("tree_size", "x"),)): 400,
        ("/ledger/iss/proof/720p/1", (("tree_size", "3"),)): 404,
        ("/ledger/..%2F/sth", ()): 400,
        ("/ledger/iss/consistency", (("first", "3"),)): 400,
        ("/ledger/iss/consistency", (("first", "3"), ("second", "2"))): 400,
        ("/ledger/iss/consistency", (("first", "3"), ("second", "99"))): 400,
        ("/ledger/iss/nothing", ()): 404,
        ("/ledger", ()): 404,
    }
    for (path, query), status in cases.items():
        r = route(lgs, KEY.verify_key, path, dict(query))
        assert (r.status, set(r.body)) == (status, {"error"}), path
