"""A small synthetic feed for the verification tests: an in-memory stand-in for the delivery
edge and its ledger routes, addressed by URL, so that `fetch` can be injected.

Imported explicitly by test modules (not a conftest), e.g.
`from tests.unit.ledger_fixtures import Edge, MASTER`.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

from nacl.signing import SigningKey

from orbitcast.ledger import FeedLedger, SignedTreeHead
from orbitcast.ledger.http_shapes import route
from orbitcast.segment import Segment

KEY = SigningKey(hashlib.sha256(b"verify test").digest())
T0 = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
RENDITIONS = ("360p", "720p", "1080p")
BASE = "http://edge.test:8000"
MASTER = f"{BASE}/live/iss/master.m3u8"


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

    def __init__(self, n: int = 6, sign_every: int = 1, key: SigningKey = KEY) -> None:
        rng = random.Random(7)
        self.key = key
        self.ledger = FeedLedger("iss", key)
        self.segments: dict[tuple[str, int], Segment] = {}
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
            lines += ['#EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS="avc1.64001f"', f"{r}/index.m3u8"]
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
            resp = route({"iss": self.ledger}, self.key.verify_key, path, dict(parse_qsl(parts.query)))
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

    def recording(self, r: str, seqs: range) -> bytes:
        """What `orbitcast receive` writes: the init segment, then the segments in order."""
        return INIT + b"".join(self.segments[(r, s)].data for s in seqs)

    def entries_and_head(self) -> tuple[list[bytes], SignedTreeHead]:
        head = self.ledger.latest_head
        assert head is not None
        return self.ledger.leaves(0, head.tree_size), head
