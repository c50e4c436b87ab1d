"""The ledger as the pipeline runs it (no Ray): appends sign at once, the timer keeps heads
fresh, timestamps never go back, the key and the logs live under the store and survive a
restart, and the HTTP router answers through it."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone

from orbitcast.ledger import SignedTreeHead, verify_inclusion
from orbitcast.ledger.merkle import leaf_hash
from orbitcast.ledger.service import KEY_NAME, LedgerService
from orbitcast.segment import Segment

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def seg(feed: str, rendition: str, seq: int, payload: bytes | None = None) -> Segment:
    data = payload if payload is not None else f"{feed}/{rendition}/{seq}".encode() * 10
    return Segment(feed, rendition, seq, seq * 2.0, 2.0, T0 + timedelta(seconds=2 * seq), data)


def test_append_signs_a_head_covering_the_new_leaves(tmp_path):
    svc = LedgerService(str(tmp_path), ["iss"])
    assert svc.append([seg("iss", "720p", 0), seg("iss", "360p", 0)], now_ms=1000) == [0, 1]
    head = svc.ledgers["iss"].latest_head
    assert head is not None and head.tree_size == 2 and head.timestamp_ms == 1000
    status, body, _ = svc.route("/ledger/iss/proof/360p/0")
    assert status == 200
    assert body["tree_head"]["tree_size"] == 2
    leaf = bytes.fromhex(body["leaf"])
    verify_inclusion(1, 2, leaf_hash(leaf), [bytes.fromhex(h) for h in body["audit_path"]], head.root_hash)


def test_retried_append_is_idempotent_and_a_conflict_is_refused(tmp_path):
    svc = LedgerService(str(tmp_path), ["iss"])
    first = seg("iss", "720p", 0)
    assert svc.append([first], 1000) == [0]
    assert svc.append([first], 1001) == [0]  # a retried hand-off
    assert svc.append([seg("iss", "720p", 0, b"other bytes")], 1002) == [None]
    assert svc.conflicts == 1 and svc.ledgers["iss"].size == 1


def test_sign_due_only_when_grown_or_stale(tmp_path):
    svc = LedgerService(str(tmp_path), ["iss", "mars"])
    heads = svc.sign_due(1000, max_age_ms=2000)
    assert sorted(h.feed for h in heads) == ["iss", "mars"]  # a first head, even when empty
    assert svc.sign_due(2500, max_age_ms=2000) == []
    assert [h.tree_size for h in svc.sign_due(3000, max_age_ms=2000)] == [0, 0]  # stale: re-signed


def test_head_timestamps_never_go_back(tmp_path):
    svc = LedgerService(str(tmp_path), ["iss"])
    svc.append([seg("iss", "720p", 0)], now_ms=5000)
    svc.append([seg("iss", "720p", 1)], now_ms=4000)  # the reference clock stepped back
    head = svc.ledgers["iss"].latest_head
    assert head is not None and head.tree_size == 2 and head.timestamp_ms == 5000


def test_restart_reloads_key_logs_and_heads_from_the_store(tmp_path):
    svc = LedgerService(str(tmp_path), ["iss"])
    svc.append([seg("iss", "720p", s) for s in range(5)], now_ms=1000)
    before = svc.route("/ledger/iss/sth")[1]
    pub = svc.route("/ledger/pubkey")[1]["public_key"]
    svc.close()
    key_file = tmp_path / "ledger" / KEY_NAME
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    again = LedgerService(str(tmp_path), ["iss"])
    assert again.route("/ledger/pubkey")[1]["public_key"] == pub
    assert again.route("/ledger/iss/sth")[1] == before
    again.append([seg("iss", "720p", 5)], now_ms=2000)
    status, body, _ = again.route("/ledger/iss/consistency", {"first": "5", "second": "6"})
    assert status == 200 and body["second"] == 6
    head = SignedTreeHead.from_json(again.route("/ledger/iss/sth")[1])
    assert head.tree_size == 6 and head.verify(again.verify_key)


def test_configured_key_path_is_used(tmp_path):
    key_path = tmp_path / "keys" / "ledger.key"
    svc = LedgerService(str(tmp_path / "store"), ["iss"], key_path=str(key_path))
    assert key_path.exists() and not (tmp_path / "store" / "ledger" / KEY_NAME).exists()
    assert bytes.fromhex(key_path.read_text().strip()) == bytes(svc.key)


def test_route_errors_are_short(tmp_path):
    svc = LedgerService(str(tmp_path), ["iss"])
    assert svc.route("/ledger/nosuch/sth")[0] == 404
    assert svc.route("/ledger/iss/proof/360p/x")[0] == 400
    status, body, headers = svc.route("/ledger/iss/consistency", {"first": "3", "second": "1"})
    assert status == 400 and len(body["error"]) < 200 and headers["Cache-Control"] == "no-store"


def test_a_log_another_process_wrote_is_served_and_a_recordings_head_is_not_resigned(tmp_path):
    """A recording job without a running pipeline certifies in a ledger of its own over the same
    store and key; the pipeline's ledger, started later, serves that log when asked for it."""
    job = LedgerService(str(tmp_path), [])
    assert job.append([seg("vod.talk", "360p", 0), seg("vod.talk", "360p", 1)], now_ms=1000) == [0, 1]
    job.close()
    pipeline = LedgerService(str(tmp_path), ["iss"], idle_heads=lambda feed: not feed.startswith("vod."))
    assert "vod.talk" not in pipeline.ledgers
    status, body, _ = pipeline.route("/ledger/vod.talk/proof/360p/1")
    assert status == 200 and body["tree_head"]["tree_size"] == 2
    assert pipeline.route("/ledger/vod.other/sth")[0] == 404, "no log, no feed"
    assert pipeline.route("/ledger/bad name/sth")[:2] == (400, {"error": "malformed feed"})
    # the live feed's head is signed again when stale, the finished recording's stays
    pipeline.append([seg("iss", "720p", 0)], now_ms=2000)
    signed = {h.feed for h in pipeline.sign_due(now_ms=10_000, max_age_ms=2000)}
    assert signed == {"iss"}
    assert pipeline.ledgers["vod.talk"].latest_head.timestamp_ms == 1000
