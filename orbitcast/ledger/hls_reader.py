"""Reading HLS for verification: the multivariant playlist, its media playlists, and the
segments they list, named by feed/rendition/seq, with their program date-time.

A minimal RFC 8216 reader (the `m3u8` package is only a test dependency): the tags a verifier
needs, nothing else. Parts, preload hints and gaps are no ledger entries, so only whole
segments are listed. HTTP is injected (`http_client.Fetch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

from ..vod.names import VOD_PREFIX
from .http_client import Fetch


@dataclass(frozen=True)
class SegmentRef:
    url: str
    feed: str
    rendition: str
    seq: int
    program_date_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"{self.feed}/{self.rendition}/{self.seq}"


# /live/{feed}/... and /vod/{name}/... (a recording, certified as the feed vod.{name})
_SEGMENT_PATH = re.compile(r"/(live|vod)/([^/]+)/([^/]+)/(\d+)\.m4s$")
_MEDIA_PATH = re.compile(r"/(live|vod)/([^/]+)/([^/]+)/[^/]+\.m3u8$")
_URI_ATTR = re.compile(r'URI="([^"]*)"')


def parse_pdt_tag(value: str) -> datetime:
    """EXT-X-PROGRAM-DATE-TIME: ISO 8601 with Z or an offset (RFC 8216 4.4.4.6)."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when


def _playlist_lines(text: str) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an M3U8 playlist")
    return lines


def parse_master(text: str, base_url: str) -> list[str]:
    """Media playlist URLs of a multivariant playlist (EXT-X-STREAM-INF and EXT-X-MEDIA URIs).
    A media playlist given directly is returned as itself."""
    lines = _playlist_lines(text)
    if any(ln.startswith("#EXTINF") for ln in lines):
        return [base_url]
    urls: list[str] = []
    expect_uri = False
    for ln in lines[1:]:
        if not ln:
            continue
        if ln.startswith("#EXT-X-STREAM-INF"):
            expect_uri = True
        elif ln.startswith("#EXT-X-MEDIA:"):
            m = _URI_ATTR.search(ln)
            if m:
                urls.append(urljoin(base_url, m.group(1)))
        elif not ln.startswith("#") and expect_uri:
            urls.append(urljoin(base_url, ln))
            expect_uri = False
    return list(dict.fromkeys(urls))  # de-duplicate, keep order


def parse_media(text: str, base_url: str) -> list[SegmentRef]:
    """The media segments of one media playlist, with feed/rendition/seq and program date-time.

    feed/rendition/seq come from the orbitcast URL scheme `/live/{feed}/{rendition}/{seq}.m4s`;
    other segment names fall back to the playlist's path and EXT-X-MEDIA-SEQUENCE numbering.
    Only an explicit EXT-X-PROGRAM-DATE-TIME is checked (derived times would add rounding).
    """
    lines = _playlist_lines(text)
    pm = _MEDIA_PATH.search(urlsplit(base_url).path)
    seq = 0
    pdt: datetime | None = None
    in_segment = gap = False
    refs: list[SegmentRef] = []
    for ln in lines[1:]:
        if not ln:
            continue
        if ln == "#EXT-X-GAP":
            gap = True  # a segment that never arrived: listed to keep the numbering, no media
        elif ln.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(ln.split(":", 1)[1])
        elif ln.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = parse_pdt_tag(ln.split(":", 1)[1])
        elif ln.startswith("#EXTINF"):
            in_segment = True
        elif not ln.startswith("#") and in_segment and gap:
            seq += 1
            pdt = None
            in_segment = gap = False
        elif not ln.startswith("#") and in_segment:
            url = urljoin(base_url, ln)
            m = _SEGMENT_PATH.search(urlsplit(url).path)
            if m:
                feed, rendition, s = _feed(m.group(1), m.group(2)), m.group(3), int(m.group(4))
            elif pm:
                feed, rendition, s = _feed(pm.group(1), pm.group(2)), pm.group(3), seq
            else:
                raise ValueError(f"cannot tell feed/rendition/seq of {url}")
            refs.append(SegmentRef(url, feed, rendition, s, pdt))
            seq += 1
            pdt = None
            in_segment = False
    return refs


def _feed(kind: str, name: str) -> str:
    return VOD_PREFIX + name if kind == "vod" else name


def walk_hls(master_url: str, fetch: Fetch) -> list[SegmentRef]:
    """Master playlist -> media playlists -> segment references, in playlist order."""
    refs: list[SegmentRef] = []
    master = fetch(master_url).decode("utf-8")
    for media_url in parse_master(master, master_url):
        text = master if media_url == master_url else fetch(media_url).decode("utf-8")
        refs.extend(parse_media(text, media_url))
    return refs
