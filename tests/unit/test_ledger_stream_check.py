"""Checking a live stream against the ledger (`stream_check`): HTTP routes in-process, fetch
injected, on the synthetic feed of `ledger_fixtures`."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import timedelta

from nacl.signing import SigningKey

from orbitcast.ledger import SignedTreeHead
from orbitcast.ledger.stream_check import verify_stream
from orbitcast.segment import Segment

from tests.unit.ledger_fixtures import BASE, KEY, MASTER, RENDITIONS, T0, Edge, fake_segment


def test_untouched_stream_passes_naming_every_listed_segment() -> None:
    edge = Edge()
    report = verify_stream(MASTER, edge.fetch, KEY.verify_key)
    assert report.ok, report.table()
    assert len(report.results) == 18
    assert {r.segment for r in report.results} == {f"iss/{r}/{s}" for r in RENDITIONS for s in range(6)}
    assert "18/18 segments verified" in report.table()


def test_one_changed_byte_is_reported_naming_exactly_that_segment() -> None:
    edge = Edge()
    edge.tamper("720p", 4, at=100)
    report = verify_stream(MASTER, edge.fetch, KEY.verify_key)
    assert not report.ok
    assert [r.segment for r in report.failures] == ["iss/720p/4"]
    assert "bytes differ" in report.failures[0].reason
    assert "iss/720p/4" in report.table() and "FAIL" in report.table()


def test_wrong_key_fails_every_segment() -> None:
    edge = Edge()
    report = verify_stream(MASTER, edge.fetch, SigningKey.generate().verify_key)
    assert not report.ok and report.fatal and "BadSignature" in report.fatal
    assert len(report.failures) == 18


def test_pdt_mismatch_is_reported() -> None:
    edge = Edge()
    edge.pdt_override[("1080p", 2)] = "2025-03-01T12:00:04.251Z"
    report = verify_stream(MASTER, edge.fetch, KEY.verify_key)
    assert [r.segment for r in report.failures] == ["iss/1080p/2"]
    assert "program date-time" in report.failures[0].reason


def test_segments_newer_than_the_pinned_head_use_a_consistent_later_head() -> None:
    edge = Edge(n=6, sign_every=1)
    sth = json.loads(edge.fetch(f"{BASE}/ledger/iss/sth"))
    # The edge publishes two more segments and a new head after the verifier pinned `sth`.
    real = edge.fetch

    def fetch(url: str) -> bytes:
        if url.endswith("/sth"):
            return json.dumps(sth).encode()
        return real(url)

    rng = random.Random(3)
    for r in RENDITIONS:
        s = Segment("iss", r, 6, 12.0, 2.0, T0 + timedelta(seconds=12), fake_segment(rng, 2, 500))
        edge.segments[(r, 6)] = s
        edge.ledger.append(s)
    edge.ledger.sign_head(5_000)
    report = verify_stream(MASTER, fetch, KEY.verify_key)
    assert report.ok, report.table()
    assert any("/consistency?first=18&second=21" in u for u in edge.requests)


def with_changed_proof(edge: Edge, segment: str, change: Callable[[dict], None]) -> Callable[[str], bytes]:
    """The edge's answers, but the proof of `segment` ("rendition/seq") altered by `change`."""

    def fetch(url: str) -> bytes:
        body = edge.fetch(url)
        if f"/proof/{segment}" in url:
            obj = json.loads(body)
            change(obj)
            body = json.dumps(obj).encode()
        return body

    return fetch


def test_a_forged_later_head_is_not_trusted() -> None:
    forger = SigningKey.generate()

    def forge(proof: dict) -> None:  # a head the real key never signed
        h = SignedTreeHead.from_json(proof["tree_head"])
        proof["tree_head"] = SignedTreeHead.sign(forger, "iss", h.tree_size, h.timestamp_ms + 1, h.root_hash).to_json()

    report = verify_stream(MASTER, with_changed_proof(Edge(), "360p/5", forge), KEY.verify_key)
    assert [r.segment for r in report.failures] == ["iss/360p/5"]
    assert "BadSignature" in report.failures[0].reason


def test_altered_audit_path_fails() -> None:
    def alter(proof: dict) -> None:
        proof["audit_path"][0] = "00" * 32

    report = verify_stream(MASTER, with_changed_proof(Edge(), "1080p/3", alter), KEY.verify_key)
    assert [r.segment for r in report.failures] == ["iss/1080p/3"]
    assert "not in the log" in report.failures[0].reason


def test_unreadable_playlists_are_fatal_and_nothing_passes() -> None:
    def fetch(url: str) -> bytes:
        raise IOError(f"HTTP 404 from {url}")

    report = verify_stream(MASTER, fetch, KEY.verify_key)
    assert not report.ok and "cannot read playlists" in report.fatal and "HTTP 404" in report.fatal
