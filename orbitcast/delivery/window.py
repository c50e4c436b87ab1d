"""The live window of every feed and rendition, with LL-HLS parts, as the edge and every Serve
replica hold it. Section numbers refer to draft-pantos-hls-rfc8216bis (HLS 2nd edition).

The model: a segment's seq is its Media Sequence Number (seq = floor(media time / D), on a
timeline that never restarts), so MSNs cannot drift between replicas, across gaps or as the
window slides. A seq that never arrived while a later one did is listed as an EXT-X-GAP, so the
timeline stays continuous and there is never an EXT-X-DISCONTINUITY.

Writes arrive out of order and more than once; each is idempotent, and every replica applies
the same writes in the same order, so every replica renders the same text. Once a seq is
closed (its EXTINF is listed) its tags never change: the server may only append to a live
playlist and drop from its head (6.2.1). The one exception is a gap that its late segment fills.

The analysis stage's tags (`TagUpdate`, docs/analysis.md) come per feed and seq, shared by
every rendition, 0.5-1.5 s after their segment: a tag adds one EXT-X-DATERANGE line before its
segment in every rung's playlist (a metadata tag may be added later, 6.2.1), is set once and
never changes, and is dropped with the segment it describes. For `_HLS_skip=v2` delta updates
the window notes, on its own clock, when each tag entered a playlist (the later of the tag's
arrival and its segment's listing) and when it left; the only text that depends on the clock,
and a replica that joined late counts its tags as new, which only makes its updates longer.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..analysis.results import EXPRESSIONS
from ..analysis.results import SegmentSummary as AnalysisSummary
from ..segment import Part, Segment
from .blocking import LiveEdge, Readiness, part_readiness, playlist_readiness, segment_readiness
from .names import MAX_PART_INDEX
from .names import init_tag as tag_of
from .playlists import (
    ExpressionTag,
    MediaView,
    PartLine,
    RenditionInfo,
    RenditionReport,
    SegmentLine,
    master_playlist,
    media_playlist,
    skippable,
)
from .policy import PlaylistPolicy


# -- updates: what the edge hands to every Serve replica (picklable: they cross Ray) ----------
@dataclass(frozen=True)
class InitUpdate:
    feed: str
    info: RenditionInfo
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class PartUpdate:
    part: Part


@dataclass(frozen=True)
class SegmentUpdate:
    segment: Segment


@dataclass(frozen=True)
class FloorUpdate:
    """Only in snapshots: the first seq a rendition ever took. A replica needs it to list the
    same gaps at the head of its window once the media before them has left `keep`."""

    feed: str
    rendition: str
    seq: int


@dataclass(frozen=True)
class ListedUpdate:
    """Only in snapshots: a closed seq of the DVR window whose media has left `keep` (only its
    listing is kept; its bytes come from the archive). A replica that joins late lists it the
    same, rather than as a gap."""

    feed: str
    rendition: str
    seq: int
    duration: float
    start: float
    program_date_time: datetime


@dataclass(frozen=True)
class TagUpdate:
    """The analysis stage's summary of one segment of `feed` (every rendition: seq is the
    segment's, and the rungs are cut together)."""

    feed: str
    summary: AnalysisSummary


Update = InitUpdate | PartUpdate | SegmentUpdate | FloorUpdate | ListedUpdate | TagUpdate

# How long the bytes of a seq closed short wait for its certified segment before its parts'
# bytes are served after all (a packager restart delays it a few seconds; one that never comes).
CERTIFIED_WAIT_S = 6.0
# A seq's parts end this close to its end on the timeline, or are short (a part is >= 1 frame).
_END_TOLERANCE_S = 0.001


@dataclass(frozen=True)
class SegmentSummary:
    """A complete segment, for /api/feeds."""

    rendition: str
    seq: int
    start: float
    duration: float
    program_date_time: datetime


# -- state ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Listed:
    """How a closed seq is listed: frozen when it closes, since a URI's tags never change."""

    duration: float
    start: float
    program_date_time: datetime
    parts: int  # its parts 0..parts-1 are listed with it (near the live edge)
    from_parts: bool  # closed by a later seq's arrival, before its certified segment came
    # Closed from parts that stop short of the seq's end (its last parts died with an encoder,
    # and the one that took over makes it again whole): its bytes are the certified segment's,
    # so a request for them waits for it (`CERTIFIED_WAIT_S` at most).
    short: bool = False


@dataclass
class _Slot:
    parts: dict[int, Part] = field(default_factory=dict)
    listed: _Listed | None = None
    data: bytes | None = field(default=None, repr=False)  # segment bytes, while within keep
    segment: Segment | None = None  # the certified segment, kept as long as `data`
    listed_at: float = 0.0  # when `listed` was set (the window's clock)

    def prefix(self) -> int:
        """How many parts can be listed: 0..n-1 all here (a part must not skip a hole)."""
        n = 0
        while n in self.parts:
            n += 1
        return n


@dataclass
class _Track:
    name: str
    feed: str = ""
    info: RenditionInfo | None = None
    init: bytes | None = field(default=None, repr=False)
    init_tag: str | None = None
    floor: int | None = None  # the first seq ever taken: no gap is ever listed before it
    newest: int | None = None  # newest seq with media; every older seq is closed
    slots: dict[int, _Slot] = field(default_factory=dict)
    first_listed: int | None = None  # MEDIA-SEQUENCE after the last write
    removed_tags: dict[int, float] = field(default_factory=dict)  # seq -> when its tag left the playlist

    def last_closed(self) -> int:
        """The MSN of the last Media Segment listed (a gap counts); newest - 1 while the newest
        segment is in progress."""
        assert self.newest is not None
        return self.newest if self.slots[self.newest].listed is not None else self.newest - 1


@dataclass
class _FeedCache:
    views: dict[str, MediaView | None] = field(default_factory=dict)
    texts: dict[tuple[str, bool, bool], str | None] = field(default_factory=dict)
    encoded: dict[tuple[str, bool, bool], bytes] = field(default_factory=dict)
    master: str | None = None
    has_master: bool = False


@dataclass(frozen=True)
class _End:
    """Where a rendition's playlist ends: its own newest media, or, while the ladder has
    dropped it (docs/energy.md), where the rendition furthest on is: its playlist goes on in
    gaps, so a player on it sees EXT-X-GAP and switches, and none waits on a stale playlist."""

    newest: int
    complete: bool
    parts: int  # parts of `newest` listed (gap parts while dropped)
    gap_open: tuple[Part, ...] = ()  # the leader's parts of an open `newest`, listed as gaps
    hinted: bool = True  # no EXT-X-PRELOAD-HINT names a part that will not be made

    @property
    def last_closed(self) -> int:
        return self.newest if self.complete else self.newest - 1


@dataclass(frozen=True)
class _Ref:
    """A point where the media timeline meets the wall clock, to date gaps from."""

    seq: int
    start: float
    program_date_time: datetime


class LiveWindow:
    def __init__(self, policy: PlaylistPolicy, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.clock = clock
        self.mismatches = 0  # certified segments whose bytes differ from the parts listed for them
        self._feeds: dict[str, dict[str, _Track]] = {}
        self._cache: dict[str, _FeedCache] = {}
        self._tags: dict[str, dict[int, AnalysisSummary]] = {}  # feed -> seq -> its analysis
        self._tag_added: dict[str, dict[int, float]] = {}  # feed -> seq -> when its tag came

    # -- writes -------------------------------------------------------------------------------
    def apply(self, update: Update) -> bool:
        if isinstance(update, PartUpdate):
            return self.add_part(update.part)
        if isinstance(update, SegmentUpdate):
            return self.add_segment(update.segment)
        if isinstance(update, InitUpdate):
            return self.set_init(update.feed, update.info, update.data)
        if isinstance(update, FloorUpdate):
            return self._set_floor(update.feed, update.rendition, update.seq)
        if isinstance(update, TagUpdate):
            return self.set_tag(update.feed, update.summary)
        if isinstance(update, ListedUpdate):
            return self._set_listed(update)
        raise TypeError(f"not a window update: {type(update).__name__}")

    def set_init(self, feed: str, info: RenditionInfo, init: bytes) -> bool:
        """True when the rendition's info or init changed (a new init gets a new MAP URI)."""
        track = self._get(feed, info.name) or self._create(feed, info.name)
        if track.info == info and track.init == init:
            return False
        track.info, track.init, track.init_tag = info, init, tag_of(init)
        self._touch(feed)
        return True

    def add_part(self, part: Part) -> bool:
        """False if the part is known, or its segment is already closed: a closed segment's
        listing cannot grow (6.2.1), so a part that comes after it closed is dropped."""
        if part.seq < 0 or not 0 <= part.index <= MAX_PART_INDEX:
            return False
        track = self._get(part.feed, part.rendition)
        if track is not None and not self._takes_part(track, part):
            return False
        track = track or self._create(part.feed, part.rendition)
        self._reach(track, part.seq)
        track.slots.setdefault(part.seq, _Slot()).parts[part.index] = part
        self._written(part.feed, track)
        return True

    def add_segment(self, seg: Segment) -> bool:
        """The certified segment: closes its seq, fills its gap, or confirms a seq closed from
        its parts (bytes := seg.data; the listing stays as it was)."""
        if seg.seq < 0:
            return False
        track = self._get(seg.feed, seg.rendition)
        if track is not None and not self._takes_segment(track, seg.seq):
            return False
        track = track or self._create(seg.feed, seg.rendition)
        self._reach(track, seg.seq)
        slot = track.slots.setdefault(seg.seq, _Slot())
        if slot.listed is not None:
            self._confirm(slot, seg)
        else:
            self._close_with(slot, seg)
        self._written(seg.feed, track)
        return True

    def set_tag(self, feed: str, summary: AnalysisSummary) -> bool:
        """The analysis of segment `summary.seq` of `feed`: True when new. A seq's tag is set
        once (a range once written never changes); one that makes no sense, or of a segment
        already older than every rendition's `keep`, is refused."""
        if not _valid(summary):
            return False
        tags = self._tags.setdefault(feed, {})
        if summary.seq in tags or summary.seq < self._tag_floor(feed):
            return False
        tags[summary.seq] = summary
        added = self._tag_added.setdefault(feed, {})
        added[summary.seq] = self.clock()
        # Tags may come before their segment (a rendition behind, an edge that restarted): the
        # newest seqs a playlist can list are held however far the renditions are; older ones go.
        limit = self._tag_span() + 16
        if len(tags) > limit:
            for seq in sorted(tags)[:len(tags) - limit]:
                del tags[seq]
                added.pop(seq, None)
        self._touch(feed)
        return True

    def tag(self, feed: str, seq: int) -> AnalysisSummary | None:
        return self._tags.get(feed, {}).get(seq)

    def _tag_span(self) -> int:
        return max(self.policy.keep, self.policy.listed)

    def _tag_floor(self, feed: str) -> int:
        """Tags of seqs under this are of no use: every rendition dropped their segments."""
        span = self._tag_span()
        lows = [t.last_closed() - span + 1 for t in self._feeds.get(feed, {}).values() if t.newest is not None]
        return min(lows) if lows else 0

    def _prune_tags(self, feed: str) -> None:
        tags = self._tags.get(feed)
        if tags:
            low = self._tag_floor(feed)
            added = self._tag_added.get(feed, {})
            for seq in [s for s in tags if s < low]:
                del tags[seq]
                added.pop(seq, None)

    def _note_removed_tags(self, feed: str, track: _Track) -> None:
        """Tags whose segments the last write slid out of the playlist, for the
        RECENTLY-REMOVED-DATERANGES of v2 delta updates (6.2.5.1)."""
        if track.newest is None or track.floor is None:
            return
        before, first = track.first_listed, self._first(track)
        track.first_listed = first
        now = self.clock()
        if before is not None and first > before:
            for seq in self._tags.get(feed, {}):
                if before <= seq < first:
                    track.removed_tags[seq] = now
        for seq in [s for s, t in track.removed_tags.items() if now - t > self.policy.skip_boundary]:
            del track.removed_tags[seq]

    def _takes_part(self, track: _Track, part: Part) -> bool:
        if track.newest is not None and part.seq < track.newest:
            return False  # closed: listed, or a gap only its segment may fill
        if track.floor is not None and part.seq < track.floor:
            return False
        slot = track.slots.get(part.seq)
        return slot is None or (slot.listed is None and part.index not in slot.parts)

    def _takes_segment(self, track: _Track, seq: int) -> bool:
        if track.floor is not None and seq < track.floor:
            return False  # MEDIA-SEQUENCE must never move backwards (6.2.2)
        if track.newest is not None and seq < track.last_closed() - self.policy.keep + 1:
            return False  # older than keep: its bytes would be dropped at once
        slot = track.slots.get(seq)
        return slot is None or slot.segment is None

    def _reach(self, track: _Track, seq: int) -> None:
        """Media for `seq` was accepted: a newer seq closes the previous newest from its parts."""
        if track.floor is None:
            track.floor = seq
        if track.newest is None or seq > track.newest:
            if track.newest is not None:
                self._close_from_parts(track.slots[track.newest], track.newest)
            track.newest = seq

    def _close_from_parts(self, slot: _Slot, seq: int) -> None:
        if slot.listed is not None:
            return
        n = slot.prefix()
        if n == 0:
            return  # nothing listable: a gap until its segment arrives
        parts = [slot.parts[i] for i in range(n)]
        first, last = parts[0], parts[-1]
        # seq covers [seq*D, (seq+1)*D) of the media timeline (orbitcast/media/boundaries.py)
        short = last.start + last.duration < (seq + 1) * self.policy.segment_duration - _END_TOLERANCE_S
        slot.listed = _Listed(sum(p.duration for p in parts), first.start, first.program_date_time, n, True, short)
        slot.listed_at = self.clock()
        slot.data = b"".join(p.data for p in parts)

    def _close_with(self, slot: _Slot, seg: Segment) -> None:
        shown = n = slot.prefix()
        if n and b"".join(slot.parts[i].data for i in range(n)) != seg.data:
            # 3.2: a segment and its listed parts must hold the same samples; parts that do not
            # add up to it (some still in flight, or different) are not listed as its parts
            self.mismatches += 1
            n = 0
        # the PDT already written before the in-progress parts must not change when it closes
        first = slot.parts[0] if shown else seg
        slot.listed = _Listed(seg.duration, first.start, first.program_date_time, n, False)
        slot.listed_at = self.clock()
        slot.data, slot.segment = seg.data, seg

    def _confirm(self, slot: _Slot, seg: Segment) -> None:
        if seg.data != slot.data:
            self.mismatches += 1
        slot.data, slot.segment = seg.data, seg

    def _set_listed(self, u: ListedUpdate) -> bool:
        """A snapshot's listing of a DVR seq whose media is gone: taken only where this window
        has nothing for that seq yet (or lists it as a gap) and would still list it."""
        track = self._get(u.feed, u.rendition)
        if u.seq < 0 or not (math.isfinite(u.duration) and u.duration > 0):
            return False
        if track is not None and (u.seq in track.slots or (track.floor is not None and u.seq < track.floor)
                                  or (track.newest is not None and u.seq < track.last_closed() - self.policy.listed + 1)):
            return False
        track = track or self._create(u.feed, u.rendition)
        self._reach(track, u.seq)
        track.slots[u.seq] = _Slot(listed=_Listed(u.duration, u.start, u.program_date_time, 0, False),
                                   listed_at=self.clock())
        self._written(u.feed, track)
        return True

    def _set_floor(self, feed: str, rendition: str, seq: int) -> bool:
        track = self._get(feed, rendition)
        if seq < 0 or (track is not None and (track.floor is not None or track.newest is not None)):
            return False
        track = track or self._create(feed, rendition)
        track.floor = seq
        self._touch(feed)
        return True

    def _written(self, feed: str, track: _Track) -> None:
        self._prune(track)
        self._note_removed_tags(feed, track)  # before their tags may go
        self._prune_tags(feed)
        self._touch(feed)

    def _prune(self, track: _Track) -> None:
        """Segment bytes stay for `keep` seqs, part bytes for `part_keep` (6.2.2); the listing
        of a closed seq as long as the playlist lists it (the DVR window)."""
        last = track.last_closed()
        keep_low = last - self.policy.keep + 1
        part_low = last - self.policy.part_keep + 1
        listed_low = last - self.policy.listed + 1
        for seq in [s for s in track.slots if s < keep_low]:
            slot = track.slots[seq]
            slot.data = slot.segment = None
            if seq < part_low:
                slot.parts = {}
            if not slot.parts and (seq < listed_low or slot.listed is None):
                del track.slots[seq]

    def _touch(self, feed: str) -> None:
        # Rendition reports make every playlist of a feed depend on its siblings.
        self._cache.pop(feed, None)

    def _get(self, feed: str, rendition: str) -> _Track | None:
        return self._feeds.get(feed, {}).get(rendition)

    def _create(self, feed: str, rendition: str) -> _Track:
        track = _Track(rendition, feed)
        self._feeds.setdefault(feed, {})[rendition] = track
        return track

    # -- snapshot -----------------------------------------------------------------------------
    def snapshot(self) -> list[Update]:
        """Updates that rebuild this window in an empty one with the same policy: same playlists,
        same bytes. Renditions come first, in their order here, so the rebuilt window lists them
        in the same order."""
        out: list[Update] = []
        for feed, tracks in self._feeds.items():
            for track in tracks.values():
                if track.floor is not None:
                    out.append(FloorUpdate(feed, track.name, track.floor))
                if track.info is not None and track.init is not None:
                    out.append(InitUpdate(feed, track.info, track.init))
        for feed, tracks in self._feeds.items():
            for track in tracks.values():
                out.extend(self._media_updates(feed, track))
        for feed, tags in self._tags.items():  # after the media: a tag's floor is the media's
            out.extend(TagUpdate(feed, tags[seq]) for seq in sorted(tags))
        return out

    @staticmethod
    def _media_updates(feed: str, track: _Track) -> list[Update]:
        """Per seq ascending: its parts, then its segment. A segment that confirmed a seq closed
        from its parts goes after the next seq's first write, which is what closed it."""
        out: list[Update] = []
        pending: list[Update] = []
        for seq in sorted(track.slots):
            slot = track.slots[seq]
            if slot.listed is not None and not slot.parts and slot.segment is None:
                # a DVR seq whose media left the window: its listing alone
                lst = slot.listed
                out.append(ListedUpdate(feed, track.name, seq, lst.duration, lst.start, lst.program_date_time))
                continue
            events: list[Update] = [PartUpdate(slot.parts[i]) for i in sorted(slot.parts)]
            confirm = slot.segment is not None and slot.listed is not None and slot.listed.from_parts
            if slot.segment is not None and not confirm:
                events.append(SegmentUpdate(slot.segment))
            if events and pending:
                events[1:1] = pending
                pending = []
            out.extend(events)
            if confirm:
                assert slot.segment is not None
                pending.append(SegmentUpdate(slot.segment))
        out.extend(pending)  # cannot happen: a seq closed from parts always has a newer one
        return out

    # -- reads --------------------------------------------------------------------------------
    def feeds(self) -> list[str]:
        return sorted(self._feeds)

    def renditions(self, feed: str) -> list[RenditionInfo]:
        """Renditions with an init and media, in the order they were first written."""
        return [t.info for t in self._feeds.get(feed, {}).values() if t.info is not None and self._playable(t)]

    def master(self, feed: str) -> str | None:
        cache = self._cache.setdefault(feed, _FeedCache())
        if not cache.has_master:
            # a rung the ladder dropped is left out: a player that starts now does not pick it
            infos = [i for i in self.renditions(feed) if not self._dropped_now(feed, i.name)]
            cache.master, cache.has_master = (master_playlist(infos) if infos else None), True
        return cache.master

    def media(self, feed: str, rendition: str, skip: bool = False, skip_dateranges: bool = False) -> str | None:
        """The media playlist; with `skip` a Playlist Delta Update (6.2.5.1) when the policy
        offers them and there is anything to skip, else the full playlist. `skip_dateranges`:
        asked with `_HLS_skip=v2`, old date ranges are left out as well."""
        key = self._text_key(rendition, skip, skip_dateranges)
        cache = self._cache.setdefault(feed, _FeedCache())
        if key not in cache.texts:
            view = self._view(feed, rendition)
            if view is None:
                cache.texts[key] = None
            elif key[1] and not skippable(view.segments, self.policy.skip_boundary):
                cache.texts[key] = self.media(feed, rendition)
            else:
                cache.texts[key] = media_playlist(view, self.policy, key[1], key[2])
        return cache.texts[key]

    def media_bytes(self, feed: str, rendition: str, skip: bool = False, skip_dateranges: bool = False) -> bytes | None:
        """`media` encoded, once per change however many requests it answers."""
        text = self.media(feed, rendition, skip, skip_dateranges)
        if text is None:
            return None
        encoded = self._cache[feed].encoded
        key = self._text_key(rendition, skip, skip_dateranges)
        if key not in encoded:
            encoded[key] = text.encode()
        return encoded[key]

    def _text_key(self, rendition: str, skip: bool, skip_dateranges: bool) -> tuple[str, bool, bool]:
        skip = skip and self.policy.skip
        return rendition, skip, skip and skip_dateranges

    def init(self, feed: str, rendition: str) -> bytes | None:
        track = self._get(feed, rendition)
        return track.init if track else None

    def init_tag(self, feed: str, rendition: str) -> str | None:
        track = self._get(feed, rendition)
        return track.init_tag if track else None

    def segment_bytes(self, feed: str, rendition: str, seq: int) -> bytes | None:
        track = self._get(feed, rendition)
        slot = track.slots.get(seq) if track else None
        if slot is None or slot.listed is None or self._awaits_certified(slot):
            return None
        return slot.data

    def _awaits_certified(self, slot: _Slot) -> bool:
        """Closed short: its parts' bytes are not the segment a proof covers, and the certified
        one is on its way (served as soon as it comes)."""
        lst = slot.listed
        return (lst is not None and lst.short and slot.segment is None
                and self.clock() - slot.listed_at < CERTIFIED_WAIT_S)

    def part_bytes(self, feed: str, rendition: str, seq: int, index: int) -> bytes | None:
        track = self._get(feed, rendition)
        slot = track.slots.get(seq) if track else None
        part = slot.parts.get(index) if slot else None
        return part.data if part else None

    def complete_segments(self, feed: str, rendition: str) -> list[SegmentSummary]:
        """The segments this window serves whole (listed, bytes kept), oldest first: what a
        time-shift playlist adds to the catalog's rows near the live edge."""
        track = self._get(feed, rendition)
        if track is None:
            return []
        out = []
        for seq in sorted(track.slots):
            slot = track.slots[seq]
            if slot.listed is not None and slot.data is not None:
                listed = slot.listed
                out.append(SegmentSummary(track.name, seq, listed.start, listed.duration, listed.program_date_time))
        return out

    def tagged(self, feed: str) -> list[tuple[AnalysisSummary, SegmentSummary | None]]:
        """The analysis tags held for `feed` by seq, each with the segment it describes (None
        while no rendition lists that seq yet)."""
        tags = self._tags.get(feed, {})
        return [(tags[seq], self.segment_at(feed, seq)) for seq in sorted(tags)]

    def segment_at(self, feed: str, seq: int) -> SegmentSummary | None:
        """Segment `seq` of `feed` as the first rendition that lists it lists it (rungs are cut
        together: same start and program date-time)."""
        for track in self._feeds.get(feed, {}).values():
            slot = track.slots.get(seq)
            if slot is not None and slot.listed is not None:
                lst = slot.listed
                return SegmentSummary(track.name, seq, lst.start, lst.duration, lst.program_date_time)
        return None

    def newest(self, feed: str) -> SegmentSummary | None:
        """The newest complete segment over the feed's renditions."""
        found = [s for t in self._feeds.get(feed, {}).values() if (s := self._newest_complete(t))]
        return max(found, key=lambda s: (s.seq, s.rendition), default=None)

    def resume_seq(self, feed: str) -> int | None:
        """The seq from which a feed whose reader and transcoder both died (a node lost) goes
        on: the newest one with media while no rendition has closed it (made again from its
        start, it comes whole, certified, and its parts of the dead encoder are not listed
        with it), else the one after. None: nothing of the feed here."""
        tracks = [t for t in self._feeds.get(feed, {}).values() if t.newest is not None]
        if not tracks:
            return None
        newest = max(t.newest for t in tracks)  # type: ignore[type-var]
        closed = any(t.newest == newest and t.slots[newest].listed is not None for t in tracks)
        return newest + 1 if closed else newest

    def last_part(self, feed: str, rendition: str) -> tuple[int, int] | None:
        """(MSN, index) of the last part the rendition's playlist lists (LAST-MSN/LAST-PART)."""
        track = self._get(feed, rendition)
        return self._last_part(track, self._end(track)) if track is not None and self._playable(track) else None

    def playlist_ready(self, feed: str, rendition: str, msn: int, part: int | None) -> Readiness:
        track = self._get(feed, rendition)
        if track is None or not self._playable(track):
            return Readiness.UNKNOWN
        return playlist_readiness(self._edge(track, self._end(track)), msn, part)

    def part_ready(self, feed: str, rendition: str, seq: int, index: int) -> Readiness:
        track = self._get(feed, rendition)
        if track is None or not self._playable(track) or not 0 <= index <= MAX_PART_INDEX:
            return Readiness.UNKNOWN
        have = self.part_bytes(feed, rendition, seq, index) is not None
        return part_readiness(self._edge(track, self._end(track)), seq, index, have)

    def segment_ready(self, feed: str, rendition: str, seq: int) -> Readiness:
        track = self._get(feed, rendition)
        if track is None or not self._playable(track):
            return Readiness.UNKNOWN
        have = self.segment_bytes(feed, rendition, seq) is not None
        slot = track.slots.get(seq)
        awaited = slot is not None and self._awaits_certified(slot)
        return segment_readiness(self._edge(track, self._end(track)), seq, have, awaited)

    # -- building views -----------------------------------------------------------------------
    @staticmethod
    def _playable(track: _Track) -> bool:
        """A playlist exists: without an init there is no MAP URI to name."""
        return track.init_tag is not None and track.newest is not None

    def _first(self, track: _Track, end: _End | None = None) -> int:
        """MEDIA-SEQUENCE: never below the first seq taken, and never decreasing."""
        assert track.floor is not None
        last = (end or self._end(track)).last_closed
        return max(track.floor, last - self.policy.listed + 1)

    # -- a ladder that changes ----------------------------------------------------------------
    def _ladder_at(self, feed: str, seq: int) -> tuple[str, ...] | None:
        """The rungs made for `seq`, as its parts say (None: no part of it here says). Read
        from the parts held, so that a replica rebuilt from a snapshot knows what this one does."""
        for track in self._feeds.get(feed, {}).values():
            slot = track.slots.get(seq)
            if slot is not None:
                for part in slot.parts.values():
                    if part.ladder:
                        return part.ladder
        return None

    def _leader(self, track: _Track) -> _Track | None:
        """The feed's rendition furthest on, other than `track` (the first one of those)."""
        others = [t for t in self._feeds.get(track.feed, {}).values() if t is not track and t.newest is not None]
        return max(others, key=lambda t: t.newest or 0, default=None)

    def _dropped_now(self, feed: str, rendition: str) -> bool:
        newest = max((t.newest for t in self._feeds.get(feed, {}).values() if t.newest is not None), default=None)
        ladder = self._ladder_at(feed, newest) if newest is not None else None
        return ladder is not None and rendition not in ladder

    def _end(self, track: _Track) -> _End:
        assert track.newest is not None
        slot = track.slots[track.newest]
        own = _End(track.newest, slot.listed is not None,
                   slot.listed.parts if slot.listed is not None else slot.prefix())
        leader = self._leader(track)
        if leader is None or leader.newest is None or leader.newest <= track.newest:
            return own
        low = max(track.newest + 1, leader.newest - self.policy.part_keep + 1)
        dropped = [q for q in range(low, leader.newest + 1)
                   if (ladder := self._ladder_at(track.feed, q)) is not None and track.name not in ladder]
        if not dropped:
            return own  # behind, or its media lost: its own end, its gaps come when it catches up
        if dropped[-1] < leader.newest:
            # made again from the seq after: its first part is on the way
            return _End(dropped[-1] + 1, False, 0)
        lead = leader.slots[leader.newest]
        if lead.listed is not None:
            return _End(leader.newest, True, lead.listed.parts, hinted=False)
        n = lead.prefix()
        return _End(leader.newest, False, n, tuple(lead.parts[i] for i in range(n)), hinted=False)

    def _sibling(self, track: _Track, seq: int) -> _Slot | None:
        """`seq` as the first other rendition that lists it has it (the rungs are cut together)."""
        for other in self._feeds.get(track.feed, {}).values():
            slot = other.slots.get(seq) if other is not track else None
            if slot is not None and slot.listed is not None:
                return slot
        return None

    def _listed_parts(self, track: _Track, seq: int) -> int:
        """How many EXT-X-PART tags `seq` lists in this rendition's playlist, once closed: its
        own, or for a gap its siblings' as gap parts."""
        slot = track.slots.get(seq)
        if slot is not None and slot.listed is not None:
            return slot.listed.parts
        sibling = self._sibling(track, seq)
        return sibling.listed.parts if sibling is not None and sibling.listed is not None else 0

    def _edge(self, track: _Track, end: _End) -> LiveEdge:
        return LiveEdge(
            newest=end.newest,
            complete=end.complete,
            parts=end.parts,
            # the previous seq's parts count only while its EXT-X-PART tags are in the playlist
            previous_parts=self._listed_parts(track, end.newest - 1) if self.policy.part_horizon >= 2 else 0,
            parts_per_segment=self.policy.parts_per_segment,
            advance_limit=self.policy.advance_part_limit,
        )

    def _view(self, feed: str, rendition: str) -> MediaView | None:
        cache = self._cache.setdefault(feed, _FeedCache())
        if rendition not in cache.views:
            track = self._get(feed, rendition)
            cache.views[rendition] = self._build_view(feed, track) if track and self._playable(track) else None
        return cache.views[rendition]

    def _build_view(self, feed: str, track: _Track) -> MediaView:
        assert track.newest is not None and track.init_tag is not None
        end = self._end(track)
        first, last = self._first(track, end), end.last_closed
        with_parts = end.newest - self.policy.part_horizon + 1
        refs = self._refs(track)
        tags = self._tags.get(feed, {})
        added = self._tag_added.get(feed, {})
        now = self.clock()
        cutoff = now - self.policy.skip_boundary  # a tag in a playlist since before this is old
        newest = track.slots[track.newest]
        open_parts: tuple[PartLine, ...] = ()
        open_date = None
        if end.gap_open:
            open_parts = tuple(self._part_line(p, gap=True) for p in end.gap_open)
            open_date = end.gap_open[0].program_date_time
        elif end.newest == track.newest and newest.listed is None:
            open_parts = tuple(self._part_line(newest.parts[i]) for i in range(newest.prefix()))
            open_date = newest.parts[0].program_date_time if open_parts else None
        return MediaView(
            media_sequence=first,
            init_tag=track.init_tag,
            segments=tuple(self._line(track, seq, seq >= with_parts, refs, tags.get(seq), added.get(seq, now) < cutoff, cutoff)
                           for seq in range(first, last + 1)),
            open_program_date_time=open_date,
            open_parts=open_parts,
            hint=self._edge(track, end).hint if end.hinted else None,
            reports=self._reports(feed, track),
            removed_tags=tuple(sorted(seq for seq, t in track.removed_tags.items() if t >= cutoff)),
        )

    def _line(self, track: _Track, seq: int, with_parts: bool, refs: list[_Ref],
              tag: AnalysisSummary | None = None, tag_came_before: bool = False, cutoff: float = 0.0) -> SegmentLine:
        """`tag_came_before`: the tag arrived before `cutoff` (now less the Skip Boundary)."""
        slot = track.slots.get(seq)
        listed = slot.listed if slot is not None else None
        if slot is None or listed is None:
            # a gap has no media to describe: its tag waits for the segment that fills it. Where
            # another rung has the seq (a rung the ladder dropped) the gap takes its span, and
            # its parts near the live edge as gap parts, as a player switching there will see.
            sibling = self._sibling(track, seq)
            if sibling is not None and sibling.listed is not None:
                s = sibling.listed
                parts = tuple(self._part_line(sibling.parts[i], gap=True) for i in range(s.parts)) if with_parts else ()
                return SegmentLine(seq, s.duration, s.program_date_time, gap=True, parts=parts)
            return SegmentLine(seq, self.policy.segment_duration, self._gap_date(seq, refs), gap=True)
        parts = tuple(self._part_line(slot.parts[i]) for i in range(listed.parts)) if with_parts else ()
        expression = ExpressionTag(tag.faces, tag.expression, tag.confidence) if tag is not None else None
        # the tag entered this playlist with whichever came last, itself or its segment's listing
        old = tag is not None and tag_came_before and slot.listed_at < cutoff
        return SegmentLine(seq, listed.duration, listed.program_date_time, parts=parts, tag=expression, tag_old=old)

    @staticmethod
    def _part_line(p: Part, gap: bool = False) -> PartLine:
        return PartLine(p.seq, p.index, p.duration, p.independent, gap)

    @staticmethod
    def _refs(track: _Track) -> list[_Ref]:
        refs: list[_Ref] = []
        for seq in sorted(track.slots):
            slot = track.slots[seq]
            if slot.listed is not None:
                refs.append(_Ref(seq, slot.listed.start, slot.listed.program_date_time))
            elif slot.parts:
                p = slot.parts[min(slot.parts)]
                refs.append(_Ref(seq, p.start, p.program_date_time))
        return refs

    def _gap_date(self, seq: int, refs: list[_Ref]) -> datetime:
        """A gap's PDT: where its media would have started (seq * D on the media timeline),
        mapped to the wall clock by the nearest media after it (there always is some: a gap is
        only listed once a later seq arrived), so that the PDTs stay consistent with the EXTINF
        durations up to the media players will play next (6.2.1)."""
        i = bisect.bisect_right(refs, seq, key=lambda r: r.seq)
        ref = refs[i] if i < len(refs) else refs[-1]
        return ref.program_date_time + timedelta(seconds=seq * self.policy.segment_duration - ref.start)

    def _reports(self, feed: str, track: _Track) -> tuple[RenditionReport, ...]:
        reports = []
        for other in sorted(self._feeds[feed].values(), key=lambda t: t.name):
            if other is not track and self._playable(other) and (r := self._report(other)) is not None:
                reports.append(r)
        return tuple(reports)

    def _report(self, track: _Track) -> RenditionReport | None:
        """4.4.5.4: LAST-MSN/LAST-PART of its last part; a rendition without parts in its playlist
        reports its last segment and no LAST-PART."""
        end = self._end(track)
        last_part = self._last_part(track, end)
        if last_part is not None:
            return RenditionReport(track.name, *last_part)
        last = end.last_closed
        return RenditionReport(track.name, last, None) if last >= self._first(track, end) else None

    def _last_part(self, track: _Track, end: _End) -> tuple[int, int] | None:
        if not end.complete and end.parts:
            return end.newest, end.parts - 1
        low = max(end.newest - self.policy.part_horizon + 1, self._first(track, end))
        for seq in range(end.last_closed, low - 1, -1):
            if n := self._listed_parts(track, seq):
                return seq, n - 1
        return None

    def _newest_complete(self, track: _Track) -> SegmentSummary | None:
        if track.newest is None:
            return None
        for seq in sorted((s for s in track.slots if s <= track.last_closed()), reverse=True):
            slot = track.slots[seq]
            if slot.listed is not None and slot.data is not None:  # listed and fetchable
                listed = slot.listed
                return SegmentSummary(track.name, seq, listed.start, listed.duration, listed.program_date_time)
        return None


def _valid(s: AnalysisSummary) -> bool:
    """A summary a playlist can carry: its expression is one of the model's classes (it is
    written into a quoted string), counts are counts, the confidence a probability."""
    if not (isinstance(s.seq, int) and s.seq >= 0 and isinstance(s.faces, int) and 0 <= s.faces <= 1000):
        return False
    if s.expression is None:
        return s.confidence is None
    return s.expression in EXPRESSIONS and s.confidence is not None and 0.0 <= s.confidence <= 1.0
