"""Time-shift from the archive: `?start=T&end=T` on a feed's playlists (as AWS MediaPackage's
time-shifted viewing). Section numbers refer to draft-pantos-hls-rfc8216bis.

- `start` and `end`: a VOD presentation of exactly that range (`EXT-X-PLAYLIST-TYPE:VOD`,
  `EXT-X-ENDLIST`): every segment whose media overlaps [start, end).
- `start` alone: an EVENT playlist (`EXT-X-PLAYLIST-TYPE:EVENT`) from `start` that grows up to
  the live edge (catch-up viewing).

T is ISO 8601 (UTC unless it says otherwise) or Unix seconds. The multivariant playlist lists
every rung with the window on each child URI; segment and init URIs are the live ones
(`{seq}.m4s`, `init.mp4?v=tag`): a seq names the same bytes live and archived, so a cache keeps
them once. Rows come from a catalog query (feed, rendition, time), joined with the segments the
replica's live window holds, which the catalog may not have flushed yet.

A seq missing between two listed ones is an `EXT-X-GAP` segment (4.4.4.7), dated where its
media would have been; where the encoding sequence changes (another init segment, or media
timestamps that jump against the seqs: a restart) an `EXT-X-DISCONTINUITY` (4.4.4.3) is
written instead, with the new `EXT-X-MAP`.

Segments of an analysed feed carry the analysis stage's `EXT-X-DATERANGE` as the live playlist
wrote it (docs/analysis.md): from the analysis table beside the catalog, and from the replica's
window near the live edge.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple, Protocol
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from .names import BadName, init_uri, segment_name
from ..analysis.table import summary_of
from .playlists import HLS_VERSION, ExpressionTag, SegmentLine, daterange, iso_ms, master_playlist
from .window import LiveWindow

PARAMS = ("start", "end")
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)  # older than any archive: a typo
_UNIX = re.compile(r"(0|[1-9][0-9]{0,10})(\.[0-9]{1,6})?")
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.,]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?")


class BadWindow(BadName):
    """A time-shift window that is malformed, reversed or out of range (HTTP 400)."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime | None  # None: up to the live edge (EVENT)

    @property
    def query(self) -> str:
        """The canonical query every child URI carries (one spelling per window: one cache key)."""
        q = f"start={quote(iso_ms(self.start))}"
        return q + (f"&end={quote(iso_ms(self.end))}" if self.end is not None else "")


def parse_instant(text: str, what: str) -> datetime:
    """ISO 8601 (a time without an offset is UTC) or Unix seconds -> an aware UTC datetime."""
    text = text.strip()
    if _UNIX.fullmatch(text):
        try:
            when = datetime.fromtimestamp(float(text), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise BadWindow(f"{what}: out of range") from None
    elif _ISO.fullmatch(text):
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise BadWindow(f"{what}: not an ISO 8601 time") from None
        when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    else:
        raise BadWindow(f"{what}: expected ISO 8601 UTC (2025-01-31T12:00:00Z) or Unix seconds")
    if when < EARLIEST:
        raise BadWindow(f"{what}: before {EARLIEST.year}")
    return when


def asks_window(params: Sequence[tuple[str, str]]) -> bool:
    return any(k in PARAMS for k, _ in params)


def window_params(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    """`start` and `end` from a query, each at most once (BadWindow otherwise)."""
    found: dict[str, str] = {}
    for key, value in params:
        if key in PARAMS:
            if key in found:
                raise BadWindow(f"{key} given twice")
            found[key] = value
    return found


def parse_window(params: Sequence[tuple[str, str]], now: datetime, max_span_s: float) -> Window:
    """The window `params` ask for, checked against `now` and the longest span served."""
    found = window_params(params)
    if "start" not in found:
        raise BadWindow("end needs a start")
    start = parse_instant(found["start"], "start")
    if start > now:
        raise BadWindow("start is in the future")
    if "end" not in found:
        if (now - start).total_seconds() > max_span_s:
            raise BadWindow(f"start is more than {max_span_s:g} s back (the longest span served)")
        return Window(start, None)
    end = parse_instant(found["end"], "end")
    if end <= start:
        raise BadWindow("end must be after start")
    if end > now:
        raise BadWindow("end is in the future (leave it out to follow the live edge)")
    if (end - start).total_seconds() > max_span_s:
        raise BadWindow(f"the range is longer than {max_span_s:g} s (the longest span served)")
    return Window(start, end)


# -- rendering --------------------------------------------------------------------------------
class Listed(NamedTuple):
    """One segment of a time-shift playlist (from the catalog or the live window). A tuple with
    the time in integer milliseconds: an hour of them is made and written in a few ms."""

    seq: int
    start: float  # media time, seconds
    duration: float
    pdt_ms: int  # program date-time, ms since the epoch
    init: str | None  # init tag; None: the one before it
    pdt_text: str = ""  # its ISO 8601 form when already rendered (catalog rows, by Arrow)

    @classmethod
    def at(cls, seq: int, start: float, duration: float, when: datetime, init: str | None) -> "Listed":
        return cls(seq, start, duration, _ms(when), init)

    @property
    def program_date_time(self) -> datetime:
        return datetime.fromtimestamp(self.pdt_ms / 1000, tz=timezone.utc)

    @property
    def end_ms(self) -> int:
        return self.pdt_ms + round(self.duration * 1000)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def _iso(ms: int) -> str:
    return iso_ms(datetime.fromtimestamp(ms / 1000, tz=timezone.utc))


def master(renditions: Sequence, window: Window) -> str:
    """The live multivariant playlist with the window on every child URI."""
    text = master_playlist(renditions)
    return "".join(f"{line}?{window.query}\n" if line and not line.startswith("#") else f"{line}\n"
                   for line in text.splitlines())


def media(rows: Sequence[Listed], window: Window, segment_duration: float, fallback_init: str | None,
          tags: dict[int, ExpressionTag] | None = None) -> str:
    """A VOD (window with an end) or EVENT media playlist of `rows` (by seq, one per seq).
    Rows before the first one with a known init take `fallback_init` (the live one). `tags`:
    the analysis stage's, by seq, each written as the segment's DATERANGE."""
    d = segment_duration
    target = max(math.ceil(d - 1e-3), *(round(r.duration) for r in rows)) if rows else math.ceil(d - 1e-3)
    out = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{max(1, target)}",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if window.end is not None else 'EVENT'}",
        f"#EXT-X-MEDIA-SEQUENCE:{rows[0].seq if rows else 0}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    first_init = next((r.init for r in rows if r.init), fallback_init)
    tag: str | None = None
    prev: Listed | None = None
    append = out.append
    extinf: dict[float, str] = {}  # most segments share one duration: format it once
    for r in rows:
        init = r.init or tag or first_init
        if prev is None:
            if init is not None:
                append(f'#EXT-X-MAP:URI="{init_uri(init)}"')
        else:
            steps = r.seq - prev.seq
            jumped = abs((r.start - prev.start) - steps * d) > d / 2
            if jumped or init != tag:
                append("#EXT-X-DISCONTINUITY")
                if init != tag and init is not None:
                    append(f'#EXT-X-MAP:URI="{init_uri(init)}"')
            else:
                for seq in range(prev.seq + 1, r.seq):
                    append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(r.pdt_ms - round((r.seq - seq) * d * 1000))}")
                    append("#EXT-X-GAP")
                    append(f"#EXTINF:{d:.5f},")
                    append(segment_name(seq))
        tag = init
        if tags and (found := tags.get(r.seq)) is not None:
            append(daterange(SegmentLine(r.seq, r.duration, r.program_date_time, tag=found)) or "")
        append(f"#EXT-X-PROGRAM-DATE-TIME:{r.pdt_text or _iso(r.pdt_ms)}")
        line = extinf.get(r.duration)
        if line is None:
            line = extinf[r.duration] = f"#EXTINF:{r.duration:.5f},"
        append(line)
        append(segment_name(r.seq))
        prev = r
    if window.end is not None:
        append("#EXT-X-ENDLIST")
    return "\n".join(out) + "\n"


def overlapping(rows: Sequence[Listed], start: datetime, end: datetime | None) -> list[Listed]:
    start_ms, end_ms = _ms(start), (_ms(end) if end is not None else None)
    return [r for r in rows if (end_ms is None or r.pdt_ms < end_ms) and r.end_ms > start_ms]


def merge(archived: Sequence[Listed], live: Sequence[Listed]) -> list[Listed]:
    """Both lists by seq -> one row per seq by seq; the live window's wins (it is what the
    segment URI serves). The catalog's rows before the window are taken as they are."""
    if not live:
        return list(archived)
    split = bisect.bisect_left(archived, live[0].seq, key=lambda r: r.seq)
    by_seq = {r.seq: r for r in archived[split:]}
    by_seq.update({r.seq: r for r in live})
    return [*archived[:split], *(by_seq[s] for s in sorted(by_seq))]


# -- answering --------------------------------------------------------------------------------
class ArchiveAccess(Protocol):
    """What opens archived media: the edge, which holds the key (deployments/delivery.py)."""

    def segment(self, feed: str, rendition: str, seq: int) -> Awaitable[bytes | None]: ...

    def init(self, feed: str, rendition: str, tag: str) -> Awaitable[bytes | None]: ...


#: (feed, rendition or None, start, end) -> catalogued rows overlapping [start, end), by seq
RowQuery = Callable[[str, str | None, datetime, datetime], list[Listed]]
#: (feed, start, end) -> the analysis table's rows overlapping [start, end) (AnalysisTable.query)
TagRows = Callable[[str, datetime, datetime], list[dict]]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    final: bool = False  # a VOD playlist of a range fully behind the live edge: cache it long


class Timeshift:
    """Answers time-shift playlists for one replica: catalog queries in a worker thread (they
    read Parquet files), live rows from the replica's window, media from `archive`."""

    def __init__(self, window: LiveWindow, rows: RowQuery, archive: ArchiveAccess | None,
                 segment_duration: float, max_span_s: float, clock: Callable[[], float],
                 tag_rows: TagRows | None = None, analysed: Collection[str] = ()) -> None:
        self.window = window
        # the analysis stage's tags, for the feeds it analyses
        self.tag_rows = tag_rows
        self.analysed = set(analysed)
        self.rows = rows
        self.archive = archive
        self.segment_duration = segment_duration
        self.max_span_s = max_span_s
        self.clock = clock

    def _window(self, params: Sequence[tuple[str, str]]) -> Window:
        return parse_window(params, datetime.fromtimestamp(self.clock(), tz=timezone.utc), self.max_span_s)

    def _live(self, feed: str, rendition: str) -> list[Listed]:
        tag = self.window.init_tag(feed, rendition)
        return [Listed.at(s.seq, s.start, s.duration, s.program_date_time, tag)
                for s in self.window.complete_segments(feed, rendition)]

    async def _listed(self, feed: str, rendition: str | None, w: Window) -> list[Listed]:
        end = w.end or datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        return await asyncio.to_thread(self.rows, feed, rendition, w.start, end)

    async def master(self, feed: str, params: Sequence[tuple[str, str]]) -> Answer:
        w = self._window(params)
        infos = self.window.renditions(feed)
        if not infos:
            return Answer(404, b"feed not found\n")
        for info in infos:  # media in one rung is enough (they are cut together)
            if overlapping(self._live(feed, info.name), w.start, w.end) or await self._listed(feed, info.name, w):
                return Answer(200, master(infos, w).encode(), final=w.end is not None)
        return Answer(404, b"no media in that range\n")

    async def media(self, feed: str, rendition: str, params: Sequence[tuple[str, str]]) -> Answer:
        w = self._window(params)
        if any(k.startswith("_HLS_") for k, _ in params):
            raise BadWindow("_HLS_ directives do not apply to a time-shift playlist")
        live = self._live(feed, rendition)
        rows = merge(await self._listed(feed, rendition, w), overlapping(live, w.start, w.end))
        if not rows:
            return Answer(404, b"no media in that range\n")
        fallback = self.window.init_tag(feed, rendition)
        if fallback is None and not any(r.init for r in rows):
            return Answer(404, b"no init segment for that range\n")
        tags = await self._tags(feed, w) if feed in self.analysed else None
        text = media(rows, w, self.segment_duration, fallback, tags)
        # Final once the live edge has passed the end: nothing more can join the range.
        final = w.end is not None and (not live or live[-1].end_ms >= _ms(w.end))
        return Answer(200, text.encode(), final=final)

    async def _tags(self, feed: str, w: Window) -> dict[int, ExpressionTag]:
        """Tags by seq for the window: the table's, then the live window's over them (what the
        live playlist lists; the table gets a tag 0.5-1.5 s and a flush after its segment)."""
        out: dict[int, ExpressionTag] = {}
        if self.tag_rows is not None:
            end = w.end or datetime.fromtimestamp(self.clock(), tz=timezone.utc)
            for row in await asyncio.to_thread(self.tag_rows, feed, w.start, end):
                s = summary_of(row)
                out[s.seq] = ExpressionTag(s.faces, s.expression, s.confidence)
        for s, _ in self.window.tagged(feed):
            out[s.seq] = ExpressionTag(s.faces, s.expression, s.confidence)
        return out

    async def segment(self, feed: str, rendition: str, seq: int) -> bytes | None:
        if self.archive is None:
            return None
        newest = self.window.newest(feed)
        if newest is not None and seq > newest.seq:
            return None  # not made yet: the archive cannot have it either
        return await self.archive.segment(feed, rendition, seq)

    async def init(self, feed: str, rendition: str, tag: str) -> bytes | None:
        return await self.archive.init(feed, rendition, tag) if self.archive is not None else None


def catalog_rows(catalog) -> RowQuery:  # noqa: ANN001 - an orbitcast.catalog.Catalog
    """The `RowQuery` of a catalog: one query by feed, rendition and time, five columns, the
    program date-times written by Arrow (Python datetimes would cost more than the query)."""
    columns = ["seq", "start", "duration", "program_date_time", "init"]

    def rows(feed: str, rendition: str | None, start: datetime, end: datetime) -> list[Listed]:
        t = catalog.query(feed, rendition=rendition, start=start, end=end, columns=columns, removed=False)
        pdt = t.column("program_date_time")
        # timestamp[ms]: %S carries the milliseconds ("05.250")
        text = pc.strftime(pdt, format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
        return list(map(Listed._make, zip(t.column("seq").to_pylist(), t.column("start").to_pylist(),
                                          t.column("duration").to_pylist(), pdt.cast(pa.int64()).to_pylist(),
                                          t.column("init").to_pylist(), text)))

    return rows
