"""What a player reads from HLS playlists (RFC 8216bis): the variants of a multivariant
playlist, and the segments, LL-HLS parts, preload hint and server control of a media playlist,
with delta updates merged into the playlist they update. Section numbers refer to RFC 8216bis.

Parsed by hand, not with `m3u8`: a player needs a handful of tags, and hundreds of simulated
viewers reload playlists several times a second (the tests check this reading against `m3u8`).
Every time is a program date-time in epoch seconds: the timeline a player plays on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from .errors import PlaylistError

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attributes(text: str) -> dict[str, str]:
    """An attribute list (4.2): NAME=value pairs, quoted strings unquoted."""
    return {k: v[1:-1] if v.startswith('"') else v for k, v in _ATTR.findall(text)}


def _pdt(value: str) -> float:
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise PlaylistError(f"bad EXT-X-PROGRAM-DATE-TIME {value!r}") from None


def _number(value: str, tag: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise PlaylistError(f"bad number in {tag}: {value!r}") from None


@dataclass(frozen=True)
class Variant:
    uri: str  # absolute
    bandwidth: int  # peak bits per second (BANDWIDTH)
    average_bandwidth: int | None
    width: int | None
    height: int | None
    codecs: str
    frame_rate: float | None
    listed: int = 0  # its place in the multivariant playlist, from 0

    @property
    def bitrate(self) -> int:
        """What ABR compares with the throughput: AVERAGE-BANDWIDTH when given, else BANDWIDTH."""
        return self.average_bandwidth or self.bandwidth

    @property
    def name(self) -> str:
        """A short label: the URI's parent folder (`360p/index.m3u8` -> `360p`), else its height."""
        parts = [p for p in urlsplit(self.uri).path.split("/") if p]
        if len(parts) >= 2:
            return parts[-2]
        return f"{self.height}p" if self.height else parts[-1] if parts else self.uri


def parse_master(text: str, url: str) -> list[Variant]:
    """The variants of a multivariant playlist, lowest bitrate first; [] for a media playlist."""
    try:
        return _parse_master(text, url)
    except PlaylistError:
        raise
    except (ValueError, IndexError) as err:
        raise PlaylistError(f"malformed multivariant playlist: {err}") from None


def _parse_master(text: str, url: str) -> list[Variant]:
    lines = [ln.strip() for ln in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not a playlist: the first line is not #EXTM3U")
    out: list[Variant] = []
    pending: dict[str, str] | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = attributes(line.split(":", 1)[1])
        elif pending is not None and line and not line.startswith("#"):
            if "BANDWIDTH" not in pending:
                raise PlaylistError("EXT-X-STREAM-INF without BANDWIDTH")
            width = height = None
            if "RESOLUTION" in pending:
                w, _, h = pending["RESOLUTION"].partition("x")
                width, height = int(w), int(h)
            out.append(Variant(
                uri=urljoin(url, line),
                bandwidth=int(pending["BANDWIDTH"]),
                average_bandwidth=int(pending["AVERAGE-BANDWIDTH"]) if "AVERAGE-BANDWIDTH" in pending else None,
                width=width, height=height, codecs=pending.get("CODECS", ""),
                frame_rate=float(pending["FRAME-RATE"]) if "FRAME-RATE" in pending else None, listed=len(out)))
            pending = None
    return sorted(out, key=lambda v: v.bitrate)


@dataclass(frozen=True)
class Part:
    seq: int  # Media Sequence Number of its parent segment
    index: int  # its place in the parent, from 0
    duration: float
    uri: str  # as written (relative)
    independent: bool
    pdt: float  # program date-time of its first sample

    @property
    def end(self) -> float:
        return self.pdt + self.duration


@dataclass(frozen=True)
class Segment:
    seq: int
    pdt: float
    duration: float  # EXTINF; for the segment in progress, the sum of its parts so far
    uri: str | None  # None: in progress (parts only, 4.4.4.9)
    gap: bool = False
    parts: tuple[Part, ...] = ()

    @property
    def complete(self) -> bool:
        return self.uri is not None

    @property
    def end(self) -> float:
        return self.pdt + self.duration


@dataclass(frozen=True)
class MediaPlaylist:
    target_duration: float
    media_sequence: int
    segments: tuple[Segment, ...]  # complete ones, then the one in progress if it lists parts
    init_uri: str | None = None
    part_target: float | None = None
    can_block_reload: bool = False
    part_hold_back: float | None = None
    hold_back: float | None = None
    can_skip_until: float | None = None
    can_skip_dateranges: bool = False
    skipped: int = 0  # EXT-X-SKIP:SKIPPED-SEGMENTS of a delta update not merged yet
    hint_uri: str | None = None  # EXT-X-PRELOAD-HINT TYPE=PART
    endlist: bool = False

    @property
    def low_latency(self) -> bool:
        """Offers what an LL-HLS player needs: parts and blocking reload."""
        return self.can_block_reload and self.part_target is not None

    @property
    def edge(self) -> float:
        """Program date-time of the end of the last media listed, parts included."""
        if not self.segments:
            raise PlaylistError("the playlist lists no segments")
        return self.segments[-1].end

    def segment(self, seq: int) -> Segment | None:
        if not self.segments:
            return None
        i = seq - self.segments[0].seq
        return self.segments[i] if 0 <= i < len(self.segments) else None

    @property
    def first_seq(self) -> int:
        return self.segments[0].seq if self.segments else self.media_sequence

    @property
    def last_complete(self) -> Segment | None:
        for s in reversed(self.segments):
            if s.complete:
                return s
        return None

    @property
    def last_part(self) -> Part | None:
        for s in reversed(self.segments):
            if s.parts:
                return s.parts[-1]
        return None

    def next_part(self) -> tuple[int, int | None]:
        """(msn, part) a blocking reload asks for: the part after the last one listed (after the
        last segment when none is, with no part). As hls.js computes it (6.2.5.2): after the
        last part of a complete segment comes part 0 of the next."""
        last = self.last_part
        end = self.last_complete
        end_seq = end.seq if end else self.media_sequence - 1
        if last is None:
            return end_seq + 1, None
        if last.seq == end_seq:
            return end_seq + 1, 0
        return last.seq, last.index + 1

    @property
    def hint(self) -> tuple[int, int] | None:
        """(seq, index) of the preload-hinted part: the part after the last one listed."""
        if self.hint_uri is None or self.last_part is None:
            return None
        msn, part = self.next_part()
        return (msn, part) if part is not None else None


def parse_media(text: str) -> MediaPlaylist:
    """A media playlist. Raises PlaylistError on anything a player could not play from."""
    try:
        return _parse_media(text)
    except PlaylistError:
        raise
    except (ValueError, IndexError) as err:
        raise PlaylistError(f"malformed playlist: {err}") from None


def _parse_media(text: str) -> MediaPlaylist:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise PlaylistError("not a playlist: the first line is not #EXTM3U")
    tags: dict[str, str] = {}
    segments: list[Segment] = []
    parts: list[Part] = []
    pdt: float | None = None  # of the next segment, if written or carried forward
    extinf: float | None = None
    gap = False
    skipped = 0
    # Segment numbers count from EXT-X-MEDIA-SEQUENCE (0 when absent, 4.4.3.2), which must come
    # before the first segment.
    seq = next((int(ln.split(":", 1)[1]) for ln in lines if ln.startswith("#EXT-X-MEDIA-SEQUENCE:")), 0)
    for raw in lines[1:]:
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            if extinf is None:
                raise PlaylistError(f"segment {line!r} without #EXTINF")
            if pdt is None:
                raise PlaylistError("segment without a program date-time (a player cannot time it)")
            segments.append(Segment(seq, pdt, extinf, line, gap, tuple(parts)))
            seq += 1
            pdt, extinf, gap, parts = pdt + segments[-1].duration, None, False, []
            continue
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-MEDIA-SEQUENCE":
            tags[tag] = value
        elif tag == "#EXTINF":
            extinf = _number(value.split(",")[0], tag)
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            pdt = _pdt(value)
        elif tag == "#EXT-X-GAP":
            gap = True
        elif tag == "#EXT-X-SKIP":
            skipped = int(attributes(value).get("SKIPPED-SEGMENTS", "0"))
            seq += skipped
        elif tag == "#EXT-X-PART":
            a = attributes(value)
            if "URI" not in a or "DURATION" not in a:
                raise PlaylistError("EXT-X-PART without URI or DURATION")
            if pdt is None:
                raise PlaylistError("part without a program date-time")
            start = parts[-1].end if parts else pdt
            parts.append(Part(seq, len(parts), _number(a["DURATION"], tag), a["URI"],
                              a.get("INDEPENDENT") == "YES", start))
        elif tag == "#EXT-X-PRELOAD-HINT":
            a = attributes(value)
            if a.get("TYPE") == "PART" and "URI" in a:
                tags[tag] = a["URI"]
        elif tag in ("#EXT-X-TARGETDURATION", "#EXT-X-SERVER-CONTROL", "#EXT-X-PART-INF", "#EXT-X-MAP"):
            tags[tag] = value
        elif tag == "#EXT-X-ENDLIST":
            tags[tag] = ""
    if parts:
        assert pdt is not None
        segments.append(Segment(seq, pdt, sum(p.duration for p in parts), None, False, tuple(parts)))
    if "#EXT-X-TARGETDURATION" not in tags:
        raise PlaylistError("no #EXT-X-TARGETDURATION")
    control = attributes(tags.get("#EXT-X-SERVER-CONTROL", ""))
    part_inf = attributes(tags.get("#EXT-X-PART-INF", ""))
    media_map = attributes(tags.get("#EXT-X-MAP", ""))
    opt = lambda d, k: _number(d[k], k) if k in d else None  # noqa: E731
    return MediaPlaylist(
        target_duration=_number(tags["#EXT-X-TARGETDURATION"], "EXT-X-TARGETDURATION"),
        media_sequence=int(tags.get("#EXT-X-MEDIA-SEQUENCE", "0")),
        segments=tuple(segments), init_uri=media_map.get("URI"),
        part_target=opt(part_inf, "PART-TARGET"),
        can_block_reload=control.get("CAN-BLOCK-RELOAD") == "YES",
        part_hold_back=opt(control, "PART-HOLD-BACK"), hold_back=opt(control, "HOLD-BACK"),
        can_skip_until=opt(control, "CAN-SKIP-UNTIL"),
        can_skip_dateranges=control.get("CAN-SKIP-DATERANGES") == "YES",
        skipped=skipped, hint_uri=tags.get("#EXT-X-PRELOAD-HINT"), endlist="#EXT-X-ENDLIST" in tags)


def merge(old: MediaPlaylist | None, new: MediaPlaylist) -> MediaPlaylist:
    """A delta update (6.2.5.1) with the segments it skipped filled in from the playlist it
    updates. Raises PlaylistError when `old` lacks them (the player then reloads in full)."""
    if not new.skipped:
        return new
    first = new.media_sequence
    have = {s.seq: s for s in old.segments} if old else {}
    filled = [have.get(seq) for seq in range(first, first + new.skipped)]
    if any(s is None or not s.complete for s in filled):
        raise PlaylistError(f"delta update skips segments {first}-{first + new.skipped - 1} this player never saw")
    return replace(new, segments=(*filled, *new.segments), skipped=0)  # type: ignore[arg-type]


def directive_url(url: str, msn: int | None, part: int | None, skip: str | None) -> str:
    """The playlist URL with LL-HLS delivery directives (6.2.5), in hls.js's order (`_HLS_msn`,
    `_HLS_part`, `_HLS_skip`): players that ask alike share the answers a cache holds."""
    base = urlsplit(url)
    query = [(k, v) for k, v in _pairs(base.query) if not k.startswith("_HLS_")]
    if msn is not None:
        query.append(("_HLS_msn", str(msn)))
        if part is not None:
            query.append(("_HLS_part", str(part)))
    if skip:
        query.append(("_HLS_skip", skip))
    return urlunsplit(base._replace(query=urlencode(query)))


def _pairs(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (p.partition("=") for p in query.split("&") if p)]


def reload_url(url: str, playlist: MediaPlaylist, skip: bool = True) -> str:
    """The next blocking reload of a live LL-HLS playlist: the next part, and a delta update
    when the server offers one."""
    msn, part = playlist.next_part()
    how = None
    if skip and playlist.can_skip_until:
        how = "v2" if playlist.can_skip_dateranges else "YES"
    return directive_url(url, msn, part, how)


@dataclass
class PlaylistCache:
    """Parsed playlists by their text: a cached answer reaches many simulated viewers, and
    parsing it once is enough (the parse is pure)."""

    limit: int = 256
    _items: dict[str, MediaPlaylist] = field(default_factory=dict)

    def parse(self, text: str) -> MediaPlaylist:
        hit = self._items.get(text)
        if hit is None:
            hit = parse_media(text)
            if len(self._items) >= self.limit:
                self._items.pop(next(iter(self._items)))
            self._items[text] = hit
        return hit
