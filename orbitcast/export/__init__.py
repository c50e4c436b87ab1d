"""`orbitcast export`: a clip of a feed's archive as one playable MP4, provable against the ledger.

The exporter is an HTTP client of a running orbitcast, like a player: it reads the time-shift
VOD presentation of the range (`/live/{feed}/master.m3u8?start=T&end=T`), picks a rung (the
highest by default), fetches its init segment and the segments that cover the range, and writes
their samples by stream copy (`cut`), from the last keyframe at or before the start to the end.
The MP4 comment names the feed, rung and seqs (`tag`), so that `orbitcast verify --recording`
can fetch those certified segments and check the clip's samples against them
(`orbitcast/ledger/clip_match.py`). HTTP is injected: `fetch(url) -> bytes`, raising on
anything but a 2xx answer (an exception with a `status` attribute for HTTP errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from ..delivery.playlists import iso_ms
from ..delivery.timeshift import Window
from ..ledger.http_client import Fetch
from ..ledger.leaf import NAME_RE
from ..media.samples import SamplesError, read_samples
from .cut import Cut, CutError, SegmentMedia, media_time, plan_cut, video_parameters, write_clip
from .exact import exact_start
from .playlist import PlaylistError, parse_presentation, parse_variants
from .tag import ClipTag, ClipTagError

__all__ = ["ClipTag", "ClipTagError", "ExportError", "ExportResult", "export_clip"]


class ExportError(RuntimeError):
    """Why no clip was written. `usage`: the request was at fault (a bad range, no media in
    it, an unknown rung), not the server or the network."""

    def __init__(self, message: str, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class ExportResult:
    path: Path
    tag: ClipTag
    cut: Cut
    start: datetime  # the range asked for
    end: datetime

    @property
    def summary(self) -> str:
        c, t = self.cut, self.tag
        early = (self.start - c.start_wall).total_seconds()
        first = "keyframe" if not c.reencoded else "frame"
        copied = (f"{len(c.video)} video and {len(c.audio)} audio samples copied" if not c.reencoded else
                  f"{c.reencoded} video frames encoded anew, then {len(c.video) - c.reencoded} video and "
                  f"{len(c.audio)} audio samples copied")
        return (f"wrote {self.path}: {t.feed}/{t.rendition} seqs {t.first_seq}-{t.last_seq}, {c.duration:.3f} s "
                f"from the {first} at {iso_ms(c.start_wall)} ({early:.3f} s before the start asked) to "
                f"{iso_ms(self.end)}; {copied}")


def _get(fetch: Fetch, url: str, what: str) -> bytes:
    try:
        return fetch(url)
    except Exception as e:  # noqa: BLE001 - injected transport: its message is the reason
        status = getattr(e, "status", None)
        usage = status is not None and 400 <= status < 500
        raise ExportError(f"{what}: {e}", usage=usage) from None


def export_clip(base_url: str, feed: str, start: datetime, end: datetime, out: Path | str, fetch: Fetch,
                rendition: str | None = None, exact: bool = False) -> ExportResult:
    """Write the clip of [start, end) of `feed` to `out`; raise `ExportError` otherwise.
    `exact`: start at `start` itself, the frames before the next keyframe encoded anew."""
    if not NAME_RE.fullmatch(feed):
        raise ExportError(f"feed {feed!r} is not 1-64 of [A-Za-z0-9_.-]")
    if end <= start:
        raise ExportError("--to must be after --from")
    base = base_url.rstrip("/")
    master_url = f"{base}/live/{quote(feed)}/master.m3u8?{Window(start, end).query}"
    try:
        variants = parse_variants(_get(fetch, master_url, "time-shift playlist").decode("utf-8", "replace"), master_url)
        if rendition is None:
            variant = variants[0]
        else:
            matches = [v for v in variants if v.rendition == rendition]
            if not matches:
                raise ExportError(f"no rendition {rendition!r}; {feed} has {', '.join(v.rendition for v in variants)}")
            variant = matches[0]
        text = _get(fetch, variant.url, f"{variant.rendition} playlist").decode("utf-8", "replace")
        presentation = parse_presentation(text, variant.url)
    except PlaylistError as e:
        raise ExportError(f"unexpected playlist from {base}: {e}", usage=False) from None
    listed = presentation.segments
    if not listed:
        raise ExportError("no media in that range")
    for seg in listed:
        if seg.gap:
            raise ExportError(f"segment {seg.seq} is missing from the archive: export the ranges before and after it")
        if seg.discontinuity:
            raise ExportError(f"the encoding restarts at segment {seg.seq} ({iso_ms(seg.program_date_time)}): "
                              "export the ranges before and after it")
    init = _get(fetch, presentation.init_url, "init segment")
    segments: list[SegmentMedia] = []
    data: dict[int, bytes] = {}
    for seg in listed:
        data[seg.seq] = _get(fetch, seg.url, f"segment {seg.seq}")
        try:
            samples = read_samples(init + data[seg.seq])
        except SamplesError as e:
            raise ExportError(f"segment {seg.seq}: {e}", usage=False) from None
        segments.append(SegmentMedia(seg.seq, seg.program_date_time, samples))
    try:
        cut = plan_cut(segments, start, end)
        if exact:
            extradata, time_base = video_parameters(init)
            cut = exact_start(cut, media_time(segments, start), extradata, time_base)
        first, last = cut.seqs
        tag = ClipTag(feed, variant.rendition, first, last, presentation.init_tag, iso_ms(start), iso_ms(end),
                      cut.reencoded)
        write_clip(init + data[first], cut, tag, Path(out))
    except CutError as e:
        raise ExportError(str(e)) from None
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}", usage=False) from None
    return ExportResult(Path(out), tag, cut, start, end)
