"""The certification ledger inside the live pipeline on local Ray: every published segment has a
proof over Serve, errors are short, and the LedgerActor survives a restart."""

from __future__ import annotations

import hashlib
import time

import m3u8
import pytest
import ray
from nacl.signing import VerifyKey

from orbitcast.ledger import SignedTreeHead, decode_leaf, leaf_hash, verify_consistency, verify_inclusion

from tests.hls import whole_segments

pytestmark = pytest.mark.ray


def _json(live, path: str, **params) -> dict:
    r = live.get(path, params=params or None)
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def _key(live) -> VerifyKey:
    return VerifyKey(bytes.fromhex(_json(live, "/ledger/pubkey")["public_key"]))


def _check_proof(proof: dict, key: VerifyKey, data: bytes | None = None) -> SignedTreeHead:
    head = SignedTreeHead.from_json(proof["tree_head"]).verify(key)
    leaf = bytes.fromhex(proof["leaf"])
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    verify_inclusion(proof["leaf_index"], head.tree_size, leaf_hash(leaf), path, head.root_hash)
    if data is not None:
        fields = decode_leaf(leaf)
        assert fields.size == len(data) and fields.sha256 == hashlib.sha256(data).digest()
    return head


def test_every_listed_segment_has_a_proof_over_serve(live):
    live.wait_media("synth", 8)
    key = _key(live)
    sth = SignedTreeHead.from_json(_json(live, "/ledger/synth/sth")).verify(key)
    assert sth.tree_size >= 2 * 3
    # The head is fresh: signed within about one segment duration (plus this request).
    assert time.time() * 1000 - sth.timestamp_ms < 2 * live.config.segment_duration * 1000 + 1000
    for rung in live.config.ladder.rungs:
        pl = m3u8.loads(live.get(f"/live/synth/{rung.name}/index.m3u8").text)
        for s in whole_segments(pl):
            data = live.get(f"/live/synth/{rung.name}/{s.uri}").content
            proof = _json(live, f"/ledger/synth/proof/{rung.name}/{s.uri.split('.')[0]}")
            _check_proof(proof, key, data)


def test_consistency_between_two_heads_and_entries(live):
    key = _key(live)
    first = SignedTreeHead.from_json(_json(live, "/ledger/synth/sth")).verify(key)
    deadline = time.monotonic() + 15
    while True:
        second = SignedTreeHead.from_json(_json(live, "/ledger/synth/sth")).verify(key)
        if second.tree_size > first.tree_size or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert second.tree_size > first.tree_size
    assert second.timestamp_ms >= first.timestamp_ms
    proof = _json(live, "/ledger/synth/consistency", first=first.tree_size, second=second.tree_size)["proof"]
    verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash,
                       [bytes.fromhex(h) for h in proof])
    entries = _json(live, "/ledger/synth/entries", start=0, end=first.tree_size)["entries"]
    assert len(entries) == min(first.tree_size, 1000)
    assert {decode_leaf(bytes.fromhex(e)).feed for e in entries} == {"synth"}


def test_idle_and_failed_feeds_still_have_a_fresh_head(live):
    # The broken feed never publishes, yet its log answers with a signed empty tree, re-signed
    # every segment duration: "nothing new" is told apart from "the log stopped answering".
    key = _key(live)
    a = SignedTreeHead.from_json(_json(live, "/ledger/broken/sth")).verify(key)
    time.sleep(live.config.segment_duration * 1.6)
    b = SignedTreeHead.from_json(_json(live, "/ledger/broken/sth")).verify(key)
    assert a.tree_size == b.tree_size == 0 and b.timestamp_ms > a.timestamp_ms


@pytest.mark.parametrize("path,status", [
    ("/ledger/nosuchfeed/sth", 404),
    ("/ledger/nosuchfeed/proof/360p/1", 404),
    ("/ledger/synth/proof/360p/999999999", 404),
    ("/ledger/synth/proof/9999p/1", 404),
    ("/ledger/synth/proof/360p/abc", 400),
    ("/ledger/synth/proof/360p/-1", 400),
    ("/ledger/synth/proof/360p/01", 400),
    ("/ledger/synth/proof/360p/1?tree_size=x", 400),
    ("/ledger/synth/consistency", 400),
    ("/ledger/synth/consistency?first=1", 400),
    ("/ledger/synth/consistency?first=5&second=2", 400),
    ("/ledger/synth/consistency?first=1&second=99999999999", 400),
    ("/ledger/synth/entries?start=a&end=2", 400),
    ("/ledger/synth/nothing", 404),
    ("/ledger/%2e%2e/sth", 400),
    ("/ledger/..%2f..%2fetc/sth", 400),
    ("/ledger", 404),
])
def test_ledger_http_errors_are_short_json(live, path, status):
    r = live.get(path)
    assert r.status_code == status, (path, r.status_code, r.text)
    assert len(r.content) < 200 and "Traceback" not in r.text
    assert set(r.json()) == {"error"}
    assert "no-store" in r.headers["cache-control"]


def test_ledger_refuses_writes(live):
    import requests

    r = requests.post(live.base + "/ledger/synth/sth", data=b"x", timeout=10)
    assert r.status_code == 405 and len(r.content) < 100


def test_ledger_survives_an_actor_restart(live):
    """Killed (Ray restarts it), the actor reloads every log from the store: old heads and
    proofs still verify, and new segments keep being appended under the same key."""
    ledger = live.pipeline.ledger
    key = _key(live)
    before = SignedTreeHead.from_json(_json(live, "/ledger/synth/sth")).verify(key)
    pl = m3u8.loads(live.get("/live/synth/360p/index.m3u8").text)
    seq = int(whole_segments(pl)[-1].uri.split(".")[0])
    old_proof = _json(live, f"/ledger/synth/proof/360p/{seq}", tree_size=before.tree_size)

    ray.kill(ledger, no_restart=False)
    killed = time.monotonic()
    deadline = killed + 40
    after = before
    while time.monotonic() < deadline:
        r = live.get("/ledger/synth/sth")
        if r.status_code == 200:
            after = SignedTreeHead.from_json(r.json())
            if after.tree_size > before.tree_size:
                break
        time.sleep(0.5)
    assert after.tree_size > before.tree_size, "no new leaves after the restart"
    recovered_s = time.monotonic() - killed

    assert _key(live) == key  # the same log identity after the restart
    after.verify(key)
    # The head served before the kill was reloaded and still proves the same leaf.
    again = _json(live, f"/ledger/synth/proof/360p/{seq}", tree_size=before.tree_size)
    # The timer may have re-signed the same tree (same size and root, a later timestamp)
    # between the two requests; everything the proof rests on must be the same.
    assert {k: v for k, v in again.items() if k != "tree_head"} == {k: v for k, v in old_proof.items() if k != "tree_head"}
    proved = _check_proof(again, key)
    assert (proved.tree_size, proved.root_hash) == (before.tree_size, before.root_hash)
    assert proved.timestamp_ms >= before.timestamp_ms
    proof = _json(live, "/ledger/synth/consistency", first=before.tree_size, second=after.tree_size)["proof"]
    verify_consistency(before.tree_size, after.tree_size, before.root_hash, after.root_hash,
                       [bytes.fromhex(h) for h in proof])
    # Segments published after the restart are in the log too.
    start = live.feeds()["synth"]["timeline_start"]
    live.wait_media("synth", (seq + 3) * live.config.segment_duration - start, timeout=30)
    pl = m3u8.loads(live.get("/live/synth/360p/index.m3u8").text)
    newest = whole_segments(pl)[-1]
    data = live.get(f"/live/synth/360p/{newest.uri}").content
    _check_proof(_json(live, f"/ledger/synth/proof/360p/{newest.uri.split('.')[0]}"), key, data)
    stats = ray.get(ledger.stats.remote())
    assert stats["conflicts"] == 0
    print(f"ledger restart: new head of larger size {recovered_s:.1f} s after the kill")
