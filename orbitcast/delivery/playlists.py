"""HLS playlist text: the multivariant playlist and LL-HLS live media playlists, as
draft-pantos-hls-rfc8216bis (HLS 2nd edition) defines them. Section numbers refer to it.

Rendering is a pure function of a `MediaView` (what one rendition lists right now) and the
`PlaylistPolicy`; the window decides what is listed, this module only how it is written.

A segment the analysis stage tagged (docs/analysis.md) carries one `EXT-X-DATERANGE` (4.4.5.1)
of CLASS `org.orbitcast.expression`, dated with the segment's own program date-time and
duration, written just before it. A DATERANGE is not a Media Segment tag: a Playlist Delta
Update asked with `_HLS_skip=YES` keeps the tags of the segments it skips (6.2.5.1). The server
offers `CAN-SKIP-DATERANGES`: asked with `_HLS_skip=v2`, it also leaves out the tags added to
the playlist more than the Skip Boundary ago, and its EXT-X-SKIP names the tags that left the
playlist within it (RECENTLY-REMOVED-DATERANGES). With the DVR window that is what keeps a
delta update small: otherwise it would repeat one tag per segment of the whole window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from .names import init_uri, part_name, segment_name
from .policy import PlaylistPolicy

# 8: an EXT-X-SKIP that replaces EXT-X-DATERANGE tags needs 10, EXT-X-SKIP 9; EXT-X-MAP
# without I-frames-only needs 6; the LL-HLS tags need none. One version for every playlist of
# the presentation, so a delta update and the full playlist it is merged into never disagree.
HLS_VERSION = 10


@dataclass(frozen=True)
class RenditionInfo:
    name: str
    width: int
    height: int
    bandwidth: int  # peak bits per second, video + audio
    average_bandwidth: int
    codecs: str
    frame_rate: float


@dataclass(frozen=True)
class PartLine:
    seq: int
    index: int
    duration: float
    independent: bool
    gap: bool = False  # GAP=YES: a rung the ladder dropped lists its siblings' parts as gaps


EXPRESSION_CLASS = "org.orbitcast.expression"


@dataclass(frozen=True)
class ExpressionTag:
    """What the analysis stage says of one segment, as its DATERANGE writes it: the most faces
    in one analysed picture and, with faces, the dominant expression and its mean probability."""

    faces: int
    expression: str | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class SegmentLine:
    """One listed Media Segment: a complete one, or a gap (media that never arrived)."""

    seq: int
    duration: float
    program_date_time: datetime
    gap: bool = False
    parts: tuple[PartLine, ...] = ()  # its EXT-X-PART tags, near the live edge only
    tag: ExpressionTag | None = None  # its EXT-X-DATERANGE, once the analysis stage sent one
    # The tag was added to this playlist more than the Skip Boundary ago: a delta update asked
    # with _HLS_skip=v2 must leave it out (6.2.5.1), every client that may ask one has it.
    tag_old: bool = False


@dataclass(frozen=True)
class RenditionReport:
    rendition: str
    last_msn: int
    last_part: int | None  # None: that rendition lists no parts


@dataclass(frozen=True)
class MediaView:
    """Everything one media playlist lists: complete segments, then the parts of the segment
    in progress (4.4.4.9: parts come before their parent), then the hint and reports."""

    media_sequence: int
    init_tag: str
    segments: tuple[SegmentLine, ...]
    open_program_date_time: datetime | None  # of the segment in progress, if it lists parts
    open_parts: tuple[PartLine, ...]
    hint: tuple[int, int] | None  # None: no part is coming (a dropped rung)
    reports: tuple[RenditionReport, ...] = ()
    # seqs whose EXT-X-DATERANGE left the playlist (with its segment) within the Skip Boundary
    removed_tags: tuple[int, ...] = ()


def iso_ms(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def master_playlist(renditions: Sequence[RenditionInfo]) -> str:
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    # Highest first: players that pick the first variant start with the best picture.
    for r in sorted(renditions, key=lambda r: r.bandwidth, reverse=True):
        attrs = [
            f"BANDWIDTH={r.bandwidth}",
            f"AVERAGE-BANDWIDTH={r.average_bandwidth}",
            f"RESOLUTION={r.width}x{r.height}",
            f'CODECS="{r.codecs}"',
        ]
        if r.frame_rate:
            attrs.append(f"FRAME-RATE={r.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(f"{r.name}/index.m3u8")
    return "\n".join(lines) + "\n"


def _ms(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _header(policy: PlaylistPolicy, view: MediaView) -> list[str]:
    control = ["CAN-BLOCK-RELOAD=YES", f"PART-HOLD-BACK={_ms(policy.part_hold_back_ms)}"]
    if policy.skip:
        control.append(f"CAN-SKIP-UNTIL={policy.skip_boundary:.1f}")
        control.append("CAN-SKIP-DATERANGES=YES")
    return [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{policy.target_duration}",
        "#EXT-X-SERVER-CONTROL:" + ",".join(control),
        f"#EXT-X-PART-INF:PART-TARGET={_ms(policy.part_target_ms)}",
        f"#EXT-X-MEDIA-SEQUENCE:{view.media_sequence}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{init_uri(view.init_tag)}"',
    ]


def _part(p: PartLine) -> str:
    independent = ",INDEPENDENT=YES" if p.independent else ""
    gap = ",GAP=YES" if p.gap else ""
    return f'#EXT-X-PART:DURATION={p.duration:.5f},URI="{part_name(p.seq, p.index)}"{independent}{gap}'


def daterange_id(seq: int) -> str:
    return f"expr-{seq}"


def daterange(s: SegmentLine) -> str | None:
    """The segment's EXT-X-DATERANGE (4.4.5.1), or None without a tag. The range is the
    segment's: START-DATE its program date-time, DURATION its EXTINF, so it never changes once
    written; X- attributes are client attributes (quoted string or decimal)."""
    t = s.tag
    if t is None:
        return None
    attrs = [f'ID="{daterange_id(s.seq)}"', f'CLASS="{EXPRESSION_CLASS}"', f'START-DATE="{iso_ms(s.program_date_time)}"',
             f"DURATION={s.duration:.5f}", f"X-FACES={t.faces}"]
    if t.faces and t.expression is not None and t.confidence is not None:
        attrs += [f'X-EXPRESSION="{t.expression}"', f"X-CONFIDENCE={t.confidence:.3f}"]
    return "#EXT-X-DATERANGE:" + ",".join(attrs)


def _segment(s: SegmentLine, old_tags: bool = True) -> list[str]:
    tag = daterange(s) if old_tags or not s.tag_old else None
    lines = [tag] if tag is not None else []
    # PDT applies to the parent and so to its first part: it must precede the parts (4.4.4.9).
    lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso_ms(s.program_date_time)}")
    lines.extend(_part(p) for p in s.parts)
    if s.gap:
        lines.append("#EXT-X-GAP")
    lines.append(f"#EXTINF:{s.duration:.5f},")
    lines.append(segment_name(s.seq))
    return lines


def _tail(view: MediaView) -> list[str]:
    lines = []
    if view.open_parts and view.open_program_date_time is not None:
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso_ms(view.open_program_date_time)}")
    lines.extend(_part(p) for p in view.open_parts)
    if view.hint is not None:
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{part_name(*view.hint)}"')
    for r in view.reports:
        attrs = [f'URI="../{r.rendition}/index.m3u8"', f"LAST-MSN={r.last_msn}"]
        if r.last_part is not None:
            attrs.append(f"LAST-PART={r.last_part}")
        lines.append("#EXT-X-RENDITION-REPORT:" + ",".join(attrs))
    return lines


def skippable(segments: Sequence[SegmentLine], boundary: float) -> int:
    """How many leading segments a delta update replaces: those that end further than the Skip
    Boundary from the end of the last segment (6.2.5.1). Counted by whole segments, so the
    update still holds at least `boundary` seconds of media."""
    after = 0.0  # media after segment i, up to the end of the last segment
    for i in range(len(segments) - 1, -1, -1):
        # microsecond rounding: a sum of float durations must not tip a segment over the edge
        if round(after, 6) > boundary:
            return i + 1
        after += segments[i].duration
    return 0


def media_playlist(view: MediaView, policy: PlaylistPolicy, skip: bool = False, skip_dateranges: bool = False) -> str:
    """The live media playlist; with `skip` (and `policy.skip`) a Playlist Delta Update, or the
    full playlist when nothing is far enough back to skip. `skip_dateranges` (`_HLS_skip=v2`):
    the update also leaves out the date ranges added more than the Skip Boundary ago."""
    segments = view.segments
    lines = _header(policy, view)
    skipped = skippable(segments, policy.skip_boundary) if skip and policy.skip else 0
    if skipped:
        # MEDIA-SEQUENCE stays the first segment's, skipped or not (4.4.5.2, 6.2.5.1)
        if skip_dateranges:
            removed = "\t".join(daterange_id(seq) for seq in view.removed_tags)
            lines.append(f'#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped},RECENTLY-REMOVED-DATERANGES="{removed}"')
        else:
            lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
        # EXT-X-SKIP replaces segments and their Media Segment tags; a DATERANGE is not one, so
        # each stays, unless v2 was asked and it is old enough that the client has it (6.2.5.1:
        # a v2 update holds no date range added more than the Skip Boundary ago, anywhere).
        lines.extend(tag for s in segments[:skipped]
                     if not (skip_dateranges and s.tag_old) and (tag := daterange(s)) is not None)
        segments = segments[skipped:]
    old_tags = not (skipped and skip_dateranges)
    for s in segments:
        lines.extend(_segment(s, old_tags))
    lines.extend(_tail(view))
    return "\n".join(lines) + "\n"
