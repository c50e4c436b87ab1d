"""`orbitcast verify` logic on a small synthetic feed: HTTP routes in-process, fetch injected."""

from __future__ import annotations

import hashlib
import json
import random
import struct
from datetime import datetime, timedelta, timezone
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest
from nacl.signing import SigningKey

from orbitcast.ledger import FeedLedger, SignedTreeHead
from orbitcast.ledger.http_shapes import route
from orbitcast.ledger.verify import (
    parse_master,
    parse_media,
    top_level_boxes,
    verify_recording,
    verify_stream,
)
from orbitcast.segment import Segment

KEY = SigningKey(hashlib.sha256(b"verify test").digest())
T0 = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
RENDITIONS = ("360p", "720p", "1080p")
BASE = "http://edge.test:8000"


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def fake_segment(rng: random.Random, parts: int, size: int) -> bytes:
    """A CMAF-shaped segment: styp, then `parts` moof/mdat pairs (LL-HLS parts)."""
    out = [box(b"styp", b"msdhmsdhcmfs")]
    for _ in range(parts):
        out.append(box(b"moof", rng.randbytes(40)))
        out.append(box(b"mdat", rng.randbytes(size // parts)))
    return b"".join(out)


INIT = box(b"ftyp", b"iso6cmfc") + box(b"moov", b"\x00" * 64)


class Edge:
    """An in-memory stand-in for the delivery edge + ledger routes, addressed by URL."""

    def __init__(self, n: int = 6, sign_every: int = 1) -> None:
        rng = random.Random(7)
        self.ledger = FeedLedger("iss", KEY)
        self.segments: dict[tuple[str, int], Segment] = {}
        self.media_seq = 0
        for seq in range(n):
            for r in RENDITIONS:
                s = Segment("iss", r, seq, 2.0 * seq, 2.0, T0 + timedelta(seconds=2 * seq),
                            fake_segment(rng, parts=1 + seq % 3, size=300 + 50 * seq))
                self.segments[(r, seq)] = s
                self.ledger.append(s)
            if seq % sign_every == sign_every - 1:
                self.ledger.sign_head(1_000 + seq)
        self.pdt_override: dict[tuple[str, int], str] = {}
        self.requests: list[str] = []

    def master(self) -> str:
        lines = ["#EXTM3U", "#EXT-X-VERSION:7"]
        for r in RENDITIONS:
            lines += [f'#EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS="avc1.64001f"', f"{r}/index.m3u8"]
        return "\n".join(lines) + "\n"

    def media(self, r: str) -> str:
        seqs = sorted(s for (rr, s) in self.segments if rr == r)
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2",
                 f"#EXT-X-MEDIA-SEQUENCE:{seqs[0]}", '#EXT-X-MAP:URI="init.mp4"']
        for s in seqs:
            pdt = self.pdt_override.get((r, s)) or self.segments[(r, s)].program_date_time.isoformat(timespec="milliseconds")
            lines += [f"#EXT-X-PROGRAM-DATE-TIME:{pdt}", "#EXTINF:2.000,", f"{s}.m4s"]
        return "\n".join(lines) + "\n"

    def fetch(self, url: str) -> bytes:
        self.requests.append(url)
        parts = urlsplit(url)
        path = parts.path
        if path.startswith("/ledger/"):
            resp = route({"iss": self.ledger}, KEY.verify_key, path, dict(parse_qsl(parts.query)))
            if resp.status != 200:
                raise IOError(f"HTTP {resp.status}: {resp.body['error']}")
            return json.dumps(resp.body).encode()
        bits = path.strip("/").split("/")
        if bits[-1] == "master.m3u8":
            return self.master().encode()
        if bits[-1] == "index.m3u8":
            return self.media(bits[-2]).encode()
        if bits[-1].endswith(".m4s"):
            key = (bits[-2], int(bits[-1][:-4]))
            if key in self.segments:
                return self.segments[key].data
        raise IOError("HTTP 404")

    def tamper(self, r: str, seq: int, at: int = -1) -> None:
        s = self.segments[(r, seq)]
        data = bytearray(s.data)
        data[at] ^= 0x01
        # The stored bytes change; the digest the edge would serve alongside them is irrelevant.
        self.segments[(r, seq)] = Segment(s.feed, s.rendition, s.seq, s.start, s.duration,
                                          s.program_date_time, bytes(data))


MASTER = f"{BASE}/live/iss/master.m3u8"


def test_untouched_stream_passes() -> None:
    edge = Edge()
    report = verify_stream(MASTER, edge.fetch)
    assert report.ok, report.table()
    assert len(report.results) == 18
    assert {r.segment for r in report.results} == {f"iss/{r}/{s}" for r in RENDITIONS for s in range(6)}
    assert f"{BASE}/ledger/pubkey" in edge.requests  # key fetched when not pinned


def test_one_changed_byte_is_reported_naming_exactly_that_segment() -> None:
    edge = Edge()
    edge.tamper("720p", 4, at=100)
    report = verify_stream(MASTER, edge.fetch, verify_key=KEY.verify_key)
    assert not report.ok
    assert [r.segment for r in report.failures] == ["iss/720p/4"]
    assert "bytes differ" in report.failures[0].reason
    assert "iss/720p/4" in report.table() and "FAIL" in report.table()


def test_wrong_key_fails_every_segment() -> None:
    edge = Edge()
    report = verify_stream(MASTER, edge.fetch, verify_key=SigningKey.generate().verify_key)
    assert not report.ok and report.fatal and "BadSignature" in report.fatal
    assert len(report.failures) == 18


def test_pdt_mismatch_is_reported() -> None:
    edge = Edge()
    edge.pdt_override[("1080p", 2)] = "2025-03-01T12:00:04.251Z"
    report = verify_stream(MASTER, edge.fetch, verify_key=KEY.verify_key)
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
    report = verify_stream(MASTER, fetch, verify_key=KEY.verify_key)
    assert report.ok, report.table()
    assert any("/consistency?first=18&second=21" in u for u in edge.requests)


def test_a_forged_later_head_is_not_trusted() -> None:
    edge = Edge()
    # A proof for 360p/5 against a head the real key never signed.
    real = edge.fetch
    forger = SigningKey.generate()

    def fetch(url: str) -> bytes:
        body = real(url)
        if "/proof/360p/5" in url:
            obj = json.loads(body)
            h = SignedTreeHead.from_json(obj["tree_head"])
            obj["tree_head"] = SignedTreeHead.sign(forger, "iss", h.tree_size, h.timestamp_ms + 1, h.root_hash).to_json()
            body = json.dumps(obj).encode()
        return body

    report = verify_stream(MASTER, fetch, verify_key=KEY.verify_key)
    assert [r.segment for r in report.failures] == ["iss/360p/5"]
    assert "BadSignature" in report.failures[0].reason


def test_altered_audit_path_fails() -> None:
    edge = Edge()
    real = edge.fetch

    def fetch(url: str) -> bytes:
        body = real(url)
        if "/proof/1080p/3" in url:
            obj = json.loads(body)
            obj["audit_path"][0] = "00" * 32
            body = json.dumps(obj).encode()
        return body

    report = verify_stream(MASTER, fetch, verify_key=KEY.verify_key)
    assert [r.segment for r in report.failures] == ["iss/1080p/3"]
    assert "not in the log" in report.failures[0].reason


def test_playlist_parsing_against_the_m3u8_package() -> None:
    m3u8 = pytest.importorskip("m3u8")
    edge = Edge()
    master_url = MASTER
    urls = parse_master(edge.master(), master_url)
    ref = m3u8.loads(edge.master(), uri=master_url)
    assert urls == [p.absolute_uri for p in ref.playlists]
    refs = parse_media(edge.media("720p"), urls[1])
    ref_media = m3u8.loads(edge.media("720p"), uri=urls[1])
    assert [r.url for r in refs] == [s.absolute_uri for s in ref_media.segments]
    assert [r.program_date_time for r in refs] == [s.program_date_time for s in ref_media.segments]
    assert [(r.rendition, r.seq) for r in refs] == [("720p", s) for s in range(6)]


# -- recordings --------------------------------------------------------------------------------


def recording(edge: Edge, r: str, seqs: range) -> bytes:
    return INIT + b"".join(edge.segments[(r, s)].data for s in seqs)


def entries_and_head(edge: Edge) -> tuple[list[bytes], SignedTreeHead]:
    head = edge.ledger.latest_head
    assert head is not None
    return edge.ledger.leaves(0, head.tree_size), head


def test_recording_passes_and_each_segment_is_named() -> None:
    edge = Edge()
    entries, head = entries_and_head(edge)
    data = recording(edge, "720p", range(1, 6))  # joined late: seq 0 not recorded, not a failure
    assert len(top_level_boxes(data)[0]) > 10
    report = verify_recording(data, entries, head, KEY.verify_key)
    assert report.ok, report.table()
    assert [r.segment for r in report.results] == [f"iss/720p/{s}" for s in range(1, 6)]


@pytest.mark.parametrize("victim", [1, 3, 5])
def test_recording_with_a_changed_byte_names_that_segment(victim: int) -> None:
    edge = Edge()
    entries, head = entries_and_head(edge)
    good = recording(edge, "1080p", range(1, 6))
    edge.tamper("1080p", victim, at=len(edge.segments[("1080p", victim)].data) // 2)
    bad = recording(edge, "1080p", range(1, 6))
    assert len(bad) == len(good) and bad != good
    report = verify_recording(bad, entries, head, KEY.verify_key)
    assert [r.segment for r in report.failures] == [f"iss/1080p/{victim}"], report.table()
    assert sum(r.ok for r in report.results) == 4


def test_recording_missing_and_truncated_segments() -> None:
    edge = Edge()
    entries, head = entries_and_head(edge)
    data = INIT + b"".join(edge.segments[("360p", s)].data for s in (0, 1, 3, 4))
    data += edge.segments[("360p", 5)].data[:-10]
    report = verify_recording(data, entries, head, KEY.verify_key)
    fails = {r.segment: r.reason for r in report.failures}
    assert fails == {"iss/360p/2": "missing from the recording",
                     "iss/360p/5": "recording ends inside this segment (truncated)"}, report.table()


def test_recording_against_entries_that_do_not_match_the_head() -> None:
    edge = Edge()
    entries, head = entries_and_head(edge)
    entries = list(entries)
    entries[3] = entries[4]
    report = verify_recording(recording(edge, "720p", range(6)), entries, head, KEY.verify_key)
    assert not report.ok and "signed root" in report.fatal


def test_recording_through_the_ledger_routes() -> None:
    from orbitcast.ledger.verify import verify_recording_url

    edge = Edge()
    data = recording(edge, "720p", range(6))
    report = verify_recording_url(data, f"{BASE}/ledger/iss", edge.fetch)
    assert report.ok and len(report.results) == 6, report.table()
    assert any("/ledger/iss/entries?start=0&end=18" in u for u in edge.requests)
    edge.tamper("720p", 0, at=30)
    report = verify_recording_url(recording(edge, "720p", range(6)), f"{BASE}/ledger/iss/sth", edge.fetch)
    assert [r.segment for r in report.failures] == ["iss/720p/0"], report.table()


def test_an_ll_hls_playlist_gives_whole_segments_only() -> None:
    """Parts, the segment in progress and gaps are no ledger entries: only whole segments are."""
    from tests.unit.test_window import S, put, whole, window

    w = window()
    for seq in (S, S + 2):  # S + 1 never arrives: a gap
        put(w, seq)
        w.add_segment(whole(seq))
    put(w, S + 3, upto=2)  # in progress
    url = f"{BASE}/live/iss/360p/index.m3u8"
    refs = parse_media(w.media("iss", "360p") or "", url)
    assert [(r.seq, r.url.rsplit("/", 1)[1]) for r in refs] == [(S, f"{S}.m4s"), (S + 2, f"{S + 2}.m4s")]
    assert all(r.program_date_time is not None for r in refs)
