"""A small real feed for the export and clip-verification tests: segments made by the live
transcoder from a lavfi source (H.264 + AAC CMAF, 1 s segments, 0.5 s parts), certified in a
ledger, and an in-memory server that answers the time-shift playlists (with the real
`orbitcast.delivery.timeshift` renderers), segments, init segments and ledger routes by URL,
so that `fetch` can be injected.

Imported explicitly by test modules: `from tests.unit.clip_fixtures import ClipEdge`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

from nacl.signing import SigningKey

from orbitcast.delivery.names import init_tag
from orbitcast.delivery.playlists import RenditionInfo
from orbitcast.delivery.timeshift import BadWindow, Listed, master, media, overlapping, parse_window
from orbitcast.ledger import FeedLedger
from orbitcast.ledger.http_shapes import route
from orbitcast.media.fmp4 import codecs_string
from orbitcast.media.source import Source
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.segment import Segment
from tests.unit.test_transcode import LADDER, LAVFI  # the transcoder tests' source and ladder

FEED = "iss"
D = 1.0
PART = 0.5
FPS = 30
CLOCK = 1_700_000_000.0
BASE = "http://edge.test:8000"
KEY = SigningKey(hashlib.sha256(b"clip test").digest())


class HTTPError(IOError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@functools.cache
def made_feed(seconds: float = 7.0) -> tuple[dict[str, bytes], tuple[Segment, ...]]:
    """(init per rung, whole segments) of `seconds` of the lavfi source, transcoded once."""
    src = Source(LAVFI, realtime=False, loop=True, clock=lambda: CLOCK)
    tr = LiveTranscoder(FEED, LADDER, D, PART, src.open())
    out: list = []
    pending = []
    for unit in src.units():
        pending.append(unit)
        if len(pending) >= 8:
            out += tr.push(pending)
            pending = []
        if unit.time >= seconds:
            break
    out += tr.push(pending)
    src.end_session()
    out += tr.flush()
    return dict(tr.init_segments), tuple(x for x in out if isinstance(x, Segment))


class ClipEdge:
    """An in-memory orbitcast server for one feed, addressed by URL."""

    def __init__(self) -> None:
        inits, segments = made_feed()
        self.inits = inits
        self.tags = {r: init_tag(data) for r, data in inits.items()}
        self.segments = {(s.rendition, s.seq): s for s in segments}
        self.data = {key: s.data for key, s in self.segments.items()}  # what the server serves
        self.ledger = FeedLedger(FEED, KEY)
        for s in sorted(segments, key=lambda s: (s.seq, s.rendition)):
            self.ledger.append(s)
        self.ledger.sign_head(1_000)
        self.requests: list[str] = []

    # -- what the tests ask about the feed
    def seqs(self, rendition: str = "hi") -> list[int]:
        return sorted(seq for r, seq in self.segments if r == rendition)

    def pdt(self, seq: int, rendition: str = "hi") -> datetime:
        return self.segments[(rendition, seq)].program_date_time

    @property
    def now(self) -> datetime:
        last = self.segments[("hi", self.seqs()[-1])]
        return last.program_date_time + timedelta(seconds=last.duration + 1)

    def tamper(self, rendition: str, seq: int, at: int) -> None:
        data = bytearray(self.data[(rendition, seq)])
        data[at] ^= 0x01
        self.data[(rendition, seq)] = bytes(data)

    # -- HTTP
    def _rows(self, rendition: str) -> list[Listed]:
        return [Listed.at(s.seq, s.start, s.duration, s.program_date_time, self.tags[rendition])
                for (r, _), s in sorted(self.segments.items(), key=lambda kv: kv[0][1]) if r == rendition]

    def _infos(self) -> list[RenditionInfo]:
        return [RenditionInfo(r.name, r.width, r.height, r.video_bitrate + 64_000, r.video_bitrate,
                              codecs_string(self.inits[r.name]), float(FPS)) for r in LADDER.rungs]

    def fetch(self, url: str) -> bytes:
        self.requests.append(url)
        parts = urlsplit(url)
        params = parse_qsl(parts.query)
        bits = [b for b in parts.path.split("/") if b]
        if bits[0] == "ledger":
            resp = route({FEED: self.ledger}, KEY.verify_key, parts.path, dict(params))
            if resp.status != 200:
                raise HTTPError(resp.status, resp.body["error"])
            return json.dumps(resp.body).encode()
        if bits[0] != "live" or bits[1] != FEED:
            raise HTTPError(404, "not found")
        if bits[-1] in ("master.m3u8", "index.m3u8"):
            try:
                window = parse_window(params, self.now, 3600)
            except BadWindow as e:
                raise HTTPError(400, str(e)) from None
            if bits[-1] == "master.m3u8":
                if not overlapping(self._rows("hi"), window.start, window.end):
                    raise HTTPError(404, "no media in that range")
                return master(self._infos(), window).encode()
            rows = overlapping(self._rows(bits[2]), window.start, window.end)
            if not rows:
                raise HTTPError(404, "no media in that range")
            return media(rows, window, D, self.tags[bits[2]]).encode()
        if bits[-1] == "init.mp4" and bits[2] in self.inits:
            return self.inits[bits[2]]
        if bits[-1].endswith(".m4s") and (bits[2], int(bits[-1][:-4])) in self.data:
            return self.data[(bits[2], int(bits[-1][:-4]))]
        raise HTTPError(404, "not found")


def at(seq: int, offset: float, edge: ClipEdge) -> datetime:
    """The wall-clock time `offset` seconds into segment `seq`."""
    return edge.pdt(seq) + timedelta(seconds=offset)


__all__ = ["BASE", "ClipEdge", "D", "FEED", "FPS", "KEY", "at", "made_feed", "timezone"]
