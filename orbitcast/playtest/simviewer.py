"""A simulated viewer: an HLS player without a decoder, in asyncio, that loads what hls.js
loads and plays it on a virtual buffer (buffer.py).

- the multivariant playlist; the first rendition listed, as hls.js starts;
- a live LL-HLS playlist (parts and CAN-BLOCK-RELOAD): it starts PART-HOLD-BACK behind the live
  edge at the independent part at or before that point, reloads the playlist with blocking
  requests for the next part (`_HLS_msn`/`_HLS_part`, delta updates with `_HLS_skip` when the
  server offers them) and loads each part as it is listed; with preload hints on, it asks for
  the hinted part before it is listed, and the server answers the moment it is cut (hls.js 1.7
  itself does not: `preload_hints=False` loads exactly as hls.js does);
- a classic live playlist: three target durations behind the edge, whole segments, the
  playlist polled every target duration (half of one when it did not change), as hls.js;
- a rendition switch at a segment boundary (every rung starts a segment with a keyframe) when
  the throughput estimate says so; the new rung's init segment is loaded once;
- catch-up at up to `max_rate` when it falls behind its target latency, the target raised by a
  second per stall, and a jump back to live when it is more than `max_latency_tds` target
  durations behind the edge: hls.js's latency controller with the viewer page's settings;
- glass-to-glass latency every `tick` seconds: the clock authority's now minus the program
  date-time of the media at the playhead.
Every request it makes is counted (and logged when asked), failed ones by what failed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import aiohttp

from . import abr
from .buffer import PlaybackBuffer, catch_up_rate, target_latency
from .clock import AuthorityClock
from .errors import PlaylistError
from .playlist import MediaPlaylist, Part, PlaylistCache, Segment, Variant, merge, parse_master, reload_url
from .session import SessionRecord

CLASSIC_HOLD_BACK_TDS = 3  # hls.js liveSyncDurationCount
REQUEST_TIMEOUT_S = 15.0  # a blocking request is held at most three target durations


@dataclass(frozen=True)
class ViewerOptions:
    low_latency: bool = True  # use LL-HLS when the playlist offers it (hls.js lowLatencyMode)
    preload_hints: bool = True
    max_rate: float = 1.5  # the viewer page's maxLiveSyncPlaybackRate
    max_latency_tds: float = 4.0  # the viewer page's liveMaxLatencyDurationCount (inf: hls.js's default)
    tick: float = 0.5  # seconds between latency samples
    log_requests: bool = False


@dataclass(frozen=True)
class Item:
    """What to load next: a part, a whole segment, or a gap to pass over."""

    seq: int
    index: int | None  # part index; None: the whole segment
    uri: str | None
    pdt: float
    duration: float
    gap: bool = False

    @property
    def end(self) -> float:
        return self.pdt + self.duration

    @property
    def boundary(self) -> bool:
        """Starts a segment: where a rendition switch may happen."""
        return not self.index


WAIT = "wait"  # not listed yet
BEHIND = "behind"  # no longer listed: the player fell out of the window


def locate(pl: MediaPlaylist, seq: int, index: int, low_latency: bool) -> Item | str:
    """The item at (seq, index) of `pl`: a part when the segment lists parts and the player
    loads parts, else the whole segment; WAIT or BEHIND when there is none (yet)."""
    while True:
        seg = pl.segment(seq)
        if seg is None:
            return BEHIND if seq < pl.first_seq else WAIT
        if low_latency and seg.parts:
            if index < len(seg.parts):
                p = seg.parts[index]
                return Item(p.seq, p.index, p.uri, p.pdt, p.duration)
            if seg.complete:  # past its last part: part 0 of the next (RFC 8216bis 6.2.5.2)
                seq, index = seq + 1, 0
                continue
            return WAIT
        if not seg.complete:
            return WAIT
        return _whole(seg)


def listed_from(pl: MediaPlaylist, seq: int, index: int) -> float:
    """Media seconds `pl` lists from (seq, index) to its edge: what lies between a player that
    loads that item next and the live edge, on the media timeline (program date-times may jump
    where a source was re-anchored; hls.js measures on the media timeline)."""
    total = 0.0
    for seg in reversed(pl.segments):  # from the edge back: a player near it looks at a few
        if seg.seq < seq:
            break
        if seg.seq > seq or index == 0 or not seg.parts:
            total += seg.duration
        else:
            total += sum(p.duration for p in seg.parts[index:])
    return total


def _whole(seg: Segment) -> Item:
    return Item(seg.seq, None, None if seg.gap else seg.uri, seg.pdt, seg.duration, seg.gap)


def start_item(pl: MediaPlaylist, position: float, low_latency: bool) -> Item:
    """Where a player joining at `position` (a PDT) starts loading: the independent part at or
    before it (LL-HLS), else the segment that holds it; the first listed when it is earlier."""
    if not pl.segments:
        raise PlaylistError("the playlist lists no segments")
    chosen: Item | None = None
    for seg in pl.segments:
        if seg.pdt > position and chosen is not None:
            break
        if low_latency and seg.parts:
            for p in seg.parts:
                if p.pdt > position and chosen is not None:
                    break
                if p.independent:
                    chosen = Item(p.seq, p.index, p.uri, p.pdt, p.duration)
        elif seg.complete:
            chosen = _whole(seg)
    if chosen is None:
        chosen = _whole(pl.segments[0])
    return chosen


def hold_back(pl: MediaPlaylist, low_latency: bool) -> float:
    """How far behind the live edge the player sits: PART-HOLD-BACK (LL-HLS), else HOLD-BACK,
    else three target durations."""
    if low_latency and pl.part_hold_back:
        return pl.part_hold_back
    return pl.hold_back or CLASSIC_HOLD_BACK_TDS * pl.target_duration


@dataclass
class _Fetched:
    status: int
    body: bytes
    ttfb: float
    total: float


@dataclass
class SimulatedViewer:
    id: str
    url: str  # multivariant (or media) playlist
    http: aiohttp.ClientSession
    clock: AuthorityClock
    run_start: float  # monotonic time the run began
    options: ViewerOptions = ViewerOptions()
    cache: PlaylistCache = field(default_factory=PlaylistCache)
    record: SessionRecord = field(init=False)
    log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.record = SessionRecord(self.id, "simulated", None, self._t())
        self.bw = abr.BandwidthEstimator()
        self.variants: list[Variant] = []
        self.level = 0
        self.playlist: MediaPlaylist | None = None
        self.playlist_at = 0.0
        self.low_latency = False
        self.buffer: PlaybackBuffer | None = None
        self._changed = asyncio.Event()
        self._inits: dict[int, str] = {}  # level -> init URI loaded
        self._hinted: dict[str, int] = {}  # URL of a part loaded by its preload hint -> its size
        self._hint_gone: list[str] = []  # hinted URLs that did not come (the last few)
        self._reload_task: asyncio.Task | None = None
        self._skip = True
        self._checked: MediaPlaylist | None = None  # the playlist last checked for the jump to live

    # -- the run ---------------------------------------------------------------------------

    def _t(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.run_start

    async def run(self, deadline: float) -> SessionRecord:
        """Play until `deadline` (monotonic); the record of what happened."""
        self.record.joined = self._t()
        ticker = asyncio.create_task(self._tick())
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._play()
        except TimeoutError:
            pass  # the run is over
        except PlaylistError as err:
            self.record.error = str(err)
        except Exception as err:  # noqa: BLE001 - one viewer's failure is its record, not the run's end
            self.record.error = f"{type(err).__name__}: {err}"
        finally:
            for task in (ticker, self._reload_task):
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in (ticker, self._reload_task) if t is not None), return_exceptions=True)
            self._finish(time.monotonic())
        return self.record

    def _finish(self, now: float) -> None:
        r, b = self.record, self.buffer
        r.ended = self._t(now)
        if b is None:
            return
        b.advance(now)
        r.first_play = None if b.started_at is None else self._t(b.started_at)
        r.stalls = [(self._t(a), self._t(z)) for a, z in b.all_stalls(now)]
        r.played_s = b.played_s
        r.extra["holes"] = b.holes
        r.extra["hole_s"] = round(b.hole_s, 3)
        if r.first_play is None and r.error is None:
            r.error = "never started playing"

    async def _play(self) -> None:
        await self._load_master()
        pl = await self._load_level_playlist()
        self.low_latency = self.options.low_latency and pl.low_latency
        threshold = (pl.part_target or pl.target_duration) if self.low_latency else pl.target_duration
        self.buffer = PlaybackBuffer(threshold=threshold)
        item = self._join_live(pl)
        self._reload_task = asyncio.create_task(self._reloads())
        seq, index = item.seq, item.index or 0
        while True:
            changed = self._changed
            pl = self.playlist
            assert pl is not None
            found = locate(pl, seq, index, self.low_latency)
            if found == BEHIND or self._too_far_behind(pl, seq, index):
                item = self._join_live(pl)
                self.record.live_jumps += 1
                seq, index = item.seq, item.index or 0
                continue
            if found == WAIT:
                if await self._load_hint(pl):
                    continue
                await self._wait(changed, pl.target_duration * 3)
                reloads = self._reload_task
                if reloads is not None and reloads.done() and not reloads.cancelled() and reloads.exception():
                    raise reloads.exception()  # type: ignore[misc]
                continue
            assert isinstance(found, Item)
            if found.boundary and await self._maybe_switch():
                continue
            if await self._load(found):
                seq, index = (found.seq, found.index + 1) if found.index is not None else (found.seq + 1, 0)

    def _join_live(self, pl: MediaPlaylist) -> Item:
        """Start (or restart) PART-HOLD-BACK / HOLD-BACK behind the live edge."""
        assert self.buffer is not None
        now = time.monotonic()
        age = now - self.playlist_at
        # as hls.js: the edge extrapolated by the playlist's age, but never closer to the listed
        # edge than one part (one target duration, classic)
        closest = pl.edge - ((pl.part_target or pl.target_duration) if self.low_latency else pl.target_duration)
        position = min(pl.edge + age - hold_back(pl, self.low_latency), closest)
        item = start_item(pl, position, self.low_latency)
        seg = pl.segment(item.seq)
        if seg is not None and position > seg.end:
            # In a hole of the dates (a source re-anchored to the wall clock): the media after
            # it. Seeking into the hole would count its seconds as media to load before playing.
            after = locate(pl, item.seq + 1, 0, self.low_latency)
            if isinstance(after, Item):
                item, position = after, after.pdt
            else:
                position = seg.end
        self.buffer.seek(max(position, item.pdt), item.pdt, now)
        return item

    def _too_far_behind(self, pl: MediaPlaylist, seq: int, index: int) -> bool:
        """hls.js's jump back to live: on a playlist load, a playhead more than the max latency
        (liveMaxLatencyDurationCount target durations) behind the listed edge goes back to live."""
        b = self.buffer
        if b is None or b.started_at is None:
            return False  # hls.js checks a player that has media (readyState), not one starting
        if pl is self._checked:
            return False  # checked when it came
        self._checked = pl
        b.advance(time.monotonic())
        return b.ahead + listed_from(pl, seq, index) > self._max_latency(pl)

    def _max_latency(self, pl: MediaPlaylist) -> float:
        return self.options.max_latency_tds * pl.target_duration

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    # -- requests --------------------------------------------------------------------------

    async def _get(self, url: str, kind: str, expected: tuple[int, ...] = ()) -> _Fetched | None:
        """GET `url`; a failure (not 200 and not `expected`) is counted, and None returned for
        a request that got no answer."""
        t0 = time.monotonic()
        status, body, ttfb = 0, b"", 0.0
        try:
            async with self.http.get(url) as r:
                ttfb = time.monotonic() - t0
                status = r.status
                body = await r.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            self.record.errors[f"{kind}: {type(err).__name__}"] += 1
            self._log(t0, kind, url, 0, 0, time.monotonic() - t0)
            return None
        total = time.monotonic() - t0
        self._log(t0, kind, url, status, len(body), total)
        if status == 200:
            self.record.requests[kind] += 1
        elif status not in expected:
            self.record.errors[f"{kind}: HTTP {status}"] += 1
        return _Fetched(status, body, ttfb, total)

    def _log(self, t0: float, kind: str, url: str, status: int, size: int, seconds: float) -> None:
        if self.options.log_requests:
            self.log.append({"session": self.id, "t": round(self._t(t0), 4), "kind": kind, "url": url,
                             "status": status, "bytes": size, "ms": round(seconds * 1000, 2)})

    async def _load_master(self) -> None:
        got = await self._get(self.url, "master")
        if got is None or got.status != 200:
            raise PlaylistError(f"the playlist {self.url} did not load ({got.status if got else 'no answer'})")
        variants = parse_master(got.body.decode("utf-8", "replace"), self.url)
        if not variants:  # a media playlist: one rendition
            variants = [Variant(self.url, 0, None, None, None, "", None)]
        self.variants = variants
        # hls.js 1.7 starts on the first variant listed (against orbitcast, the highest: with no
        # throughput measured yet it finds no better start), then adapts
        self.level = min(range(len(variants)), key=lambda i: variants[i].listed)
        v = variants[self.level]
        self.record.switch_to(self._t(), v.name, v.bitrate, v.height)

    async def _load_level_playlist(self) -> MediaPlaylist:
        """The current rendition's playlist, plain (a first load or a switch)."""
        url = self.variants[self.level].uri
        for attempt in range(3):
            got = await self._get(url, "playlist")
            if got is not None and got.status == 200:
                pl = self.cache.parse(got.body.decode("utf-8", "replace"))
                if pl.segments:
                    self._set_playlist(pl)
                    return pl
            await asyncio.sleep(0.5 * (attempt + 1))
        raise PlaylistError(f"the media playlist {url} did not load")

    def _set_playlist(self, pl: MediaPlaylist) -> None:
        self.playlist = pl
        self.playlist_at = time.monotonic()
        self._changed.set()
        self._changed = asyncio.Event()

    async def _reloads(self) -> None:
        """Keep the current rendition's playlist fresh: blocking reloads (LL-HLS) or polling."""
        if not self.low_latency:
            return await self._polls()
        while True:
            pl = self.playlist
            assert pl is not None
            url = self.variants[self.level].uri
            ask = reload_url(url, pl, skip=self._skip)
            started = time.monotonic()
            got = await self._get(ask, "reload")
            if got is None or got.status != 200:
                if got is not None and got.status == 503:
                    continue  # held as long as the server holds: the feed paused; ask again
                # refused or unreachable: after a breath, a plain load, then blocking again
                await asyncio.sleep(min(1.0, pl.target_duration / 2))
                await self._reload_plain(url)
                continue
            try:
                answer = self.cache.parse(got.body.decode("utf-8", "replace"))
            except PlaylistError as err:
                self.record.errors[f"reload: {err}"] += 1
                await asyncio.sleep(min(1.0, pl.target_duration / 2))
                continue
            try:
                new = merge(pl, answer)
            except PlaylistError:
                self.record.errors["reload: delta update not mergeable"] += 1
                self._skip = False  # as hls.js: full playlists from then on
                continue
            self._set_playlist(new)
            if new.next_part() == pl.next_part() and time.monotonic() - started < 0.02:
                await asyncio.sleep((pl.part_target or pl.target_duration) / 2)  # an early, stale answer

    async def _polls(self) -> None:
        """Classic live: reload after the last segment's duration, half a target duration when
        the playlist did not change (hls.js)."""
        assert self.playlist is not None
        interval = self.playlist.segments[-1].duration
        while True:
            await asyncio.sleep(max(0.05, interval))
            before = self.playlist
            assert before is not None
            await self._reload_plain(self.variants[self.level].uri)
            after = self.playlist
            assert after is not None
            changed = after.edge != before.edge
            interval = after.segments[-1].duration if changed else after.target_duration / 2

    async def _reload_plain(self, url: str) -> None:
        got = await self._get(url, "playlist")
        if got is not None and got.status == 200:
            try:
                self._set_playlist(self.cache.parse(got.body.decode("utf-8", "replace")))
            except PlaylistError as err:
                self.record.errors[f"playlist: {err}"] += 1

    async def _maybe_switch(self) -> bool:
        """At a segment boundary: switch rungs when the estimate says so. True if it did. Not
        before the first download was measured: the start rendition is kept until then."""
        if not self.bw.measured:
            return False
        chosen = abr.choose([v.bitrate for v in self.variants], self.level, self.bw.estimate)
        if chosen == self.level:
            return False
        self.level = chosen
        v = self.variants[chosen]
        self.record.switch_to(self._t(), v.name, v.bitrate, v.height)
        if self._reload_task is not None:
            self._reload_task.cancel()
            await asyncio.gather(self._reload_task, return_exceptions=True)
        await self._load_level_playlist()
        self._reload_task = asyncio.create_task(self._reloads())
        return True

    async def _ensure_init(self, pl: MediaPlaylist) -> bool:
        if pl.init_uri is None or self._inits.get(self.level) == pl.init_uri:
            return True
        got = await self._get(urljoin(self.variants[self.level].uri, pl.init_uri), "init")
        if got is None or got.status != 200:
            await asyncio.sleep(0.2)
            return False
        self.record.bytes += len(got.body)
        self._inits[self.level] = pl.init_uri
        return True

    async def _load(self, item: Item) -> bool:
        """Load one item into the buffer. True when it is in (or passed over, a gap)."""
        assert self.buffer is not None and self.playlist is not None
        if item.gap:  # no media to load: the next media follows on (a player skips the hole)
            self.record.requests["gap"] += 1
            return True
        if not await self._ensure_init(self.playlist):
            return False
        url = urljoin(self.variants[self.level].uri, item.uri or "")
        if self._hinted.pop(url, None) is not None:
            self.buffer.add(item.pdt, item.end, time.monotonic())  # came early, by its preload hint
            return True
        kind = "part" if item.index is not None else "segment"
        got = await self._get(url, kind)
        if got is None or got.status != 200:
            # Tried again after a breath; an item the playlist no longer lists is not asked for
            # again: the next look in the playlist finds the whole segment, or that it is behind.
            await asyncio.sleep(0.1 if got is not None and got.status == 404 else 0.2)
            return False
        self.record.bytes += len(got.body)
        self.bw.download(got.total, got.ttfb, len(got.body))
        self.buffer.add(item.pdt, item.end, time.monotonic())
        return True

    async def _load_hint(self, pl: MediaPlaylist) -> bool:
        """The next part is not listed yet: ask for the preload-hinted one, which is it (the
        server names the part it will cut next). True if it came. The hint is taken by its URI,
        not by what the player expects it to be: a server may know the segment has ended."""
        if not (self.low_latency and self.options.preload_hints and pl.hint_uri):
            return False
        url = urljoin(self.variants[self.level].uri, pl.hint_uri)
        if url in self._hinted or url in self._hint_gone:
            return False
        got = await self._get(url, "hint", expected=(404, 503))
        if got is None or got.status != 200:
            # it will not come (a segment ended early) or not in time: follow the playlist
            self._hint_gone.append(url)
            del self._hint_gone[:-8]
            return False
        self.record.bytes += len(got.body)
        self.bw.download(got.total, got.ttfb, len(got.body), held=True)
        self._hinted[url] = len(got.body)
        while len(self._hinted) > 16:  # hinted for a rendition it left: never asked for again
            self._hinted.pop(next(iter(self._hinted)))
        return True

    # -- the clock ------------------------------------------------------------------------

    async def _tick(self) -> None:
        """Every `tick`: play on, sample the latency, set the catch-up rate."""
        while True:
            await asyncio.sleep(self.options.tick)
            b, pl = self.buffer, self.playlist
            if b is None or pl is None or b.started_at is None:
                continue
            now = time.monotonic()
            b.advance(now)
            shown = b.pdt
            if shown is None:
                continue
            self.record.latency.append((round(self._t(now), 3), round(self.clock.now() - shown, 4)))
            edge_now = pl.edge + (now - self.playlist_at)
            stalls = len(b.stalls) + (b.stalled_since is not None)
            target = target_latency(hold_back(pl, self.low_latency), stalls, pl.target_duration)
            b.set_rate(catch_up_rate(edge_now - shown, target, pl.target_duration, b.ahead, self.options.max_rate,
                                     self._max_latency(pl)), now)
