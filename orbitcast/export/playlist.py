"""Reading a time-shift VOD presentation (`master.m3u8?start=T&end=T`) for export: which rung,
which init segment, which segments with their program date-times and durations.

Only what orbitcast's own time-shift playlists say is read (orbitcast/delivery/timeshift.py);
gaps and discontinuities are reported, for the exporter refuses to join across them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urljoin, urlsplit

from ..ledger.hls_reader import parse_pdt_tag

_BANDWIDTH = re.compile(r"(?:^|[:,])BANDWIDTH=(\d+)")
_URI = re.compile(r'URI="([^"]*)"')
_SEGMENT = re.compile(r"(\d+)\.m4s$")


class PlaylistError(ValueError):
    """A playlist that is not the time-shift presentation expected."""


@dataclass(frozen=True)
class Variant:
    rendition: str
    bandwidth: int
    url: str


@dataclass(frozen=True)
class Listed:
    seq: int
    url: str
    program_date_time: datetime
    duration: float
    gap: bool = False
    discontinuity: bool = False  # an encoder restart before this segment


@dataclass(frozen=True)
class MediaPresentation:
    init_url: str
    init_tag: str  # "" when the init URI carries no version
    segments: list[Listed]


def _lines(text: str) -> list[str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not an M3U8 playlist")
    return lines


def parse_variants(text: str, base_url: str) -> list[Variant]:
    """The rungs of a multivariant playlist, highest bandwidth first."""
    out: list[Variant] = []
    bandwidth: int | None = None
    for ln in _lines(text)[1:]:
        if ln.startswith("#EXT-X-STREAM-INF:"):
            m = _BANDWIDTH.search(ln)
            bandwidth = int(m.group(1)) if m else 0
        elif not ln.startswith("#") and bandwidth is not None:
            url = urljoin(base_url, ln)
            out.append(Variant(urlsplit(url).path.rstrip("/").split("/")[-2], bandwidth, url))
            bandwidth = None
    if not out:
        raise PlaylistError("the multivariant playlist lists no rungs")
    return sorted(out, key=lambda v: v.bandwidth, reverse=True)


def parse_presentation(text: str, base_url: str) -> MediaPresentation:
    """The init segment and the segments of one time-shift media playlist."""
    lines = _lines(text)
    init_url = ""
    segments: list[Listed] = []
    pdt: datetime | None = None
    duration: float | None = None
    gap = discontinuity = False
    for ln in lines[1:]:
        if ln.startswith("#EXT-X-MAP:"):
            m = _URI.search(ln)
            if m is None:
                raise PlaylistError("EXT-X-MAP without a URI")
            if init_url and segments:
                discontinuity = True  # a second init: another encoding
            init_url = init_url or urljoin(base_url, m.group(1))
        elif ln.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            try:
                pdt = parse_pdt_tag(ln.split(":", 1)[1])
            except ValueError:
                raise PlaylistError(f"bad program date-time: {ln}") from None
        elif ln.startswith("#EXTINF:"):
            try:
                duration = float(ln.split(":", 1)[1].split(",", 1)[0])
            except ValueError:
                raise PlaylistError(f"bad EXTINF: {ln}") from None
        elif ln == "#EXT-X-GAP":
            gap = True
        elif ln == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif not ln.startswith("#"):
            m = _SEGMENT.search(urlsplit(ln).path)
            if m is None or pdt is None or duration is None:
                raise PlaylistError(f"segment {ln} has no seq name, program date-time or duration")
            segments.append(Listed(int(m.group(1)), urljoin(base_url, ln), pdt, duration, gap, discontinuity))
            pdt, duration, gap, discontinuity = None, None, False, False
    if not init_url:
        raise PlaylistError("the media playlist names no init segment")
    tag = parse_qs(urlsplit(init_url).query).get("v", [""])[0]
    return MediaPresentation(init_url, tag, segments)
