"""Cutting a clip out of whole segments by stream copy: no sample is decoded or encoded.

Wall-clock times map to media time through each segment's program date-time (the capture time
of its first frame): a time inside segment N is `media start of N + (t - PDT of N)`. So a
range stays right even where the timeline has jumped between segments (a starved realtime
source skips program date-times, not seqs).

The clip starts at the last video keyframe at or before `start` (a decoder can start nowhere
else without re-encoding) and ends at `end`: video samples whose decode time is before it, and
audio samples between the keyframe and `end`. Its timestamps are moved so the keyframe is at 0;
everything else is the segments' samples, byte for byte, in their order.
"""

from __future__ import annotations

import heapq
import io
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av

from ..media.samples import Sample
from .tag import ClipTag


class CutError(ValueError):
    """Nothing to cut (no video in the range) or media that cannot be written."""


@dataclass(frozen=True)
class SegmentMedia:
    seq: int
    program_date_time: datetime
    samples: dict[str, list[Sample]]

    @property
    def media_start(self) -> Fraction:
        """Media time of the segment's first frame (what its program date-time dates)."""
        video = self.samples["video"]
        if not video:
            raise CutError(f"segment {self.seq} holds no video")
        return min(s.pts for s in video)

    def media_time(self, when: datetime) -> Fraction:
        offset = when - self.program_date_time
        micros = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
        return self.media_start + Fraction(micros, 1_000_000)


@dataclass(frozen=True)
class Cut:
    """What goes into the clip: (seq, sample) per kind, in decode order."""

    video: list[tuple[int, Sample]]
    audio: list[tuple[int, Sample]]
    start: Fraction  # media time of the first frame (a keyframe): 0 in the clip
    end: Fraction  # media time of the range's end
    start_wall: datetime  # wall-clock time of the first frame
    reencoded: int = 0  # leading video samples encoded anew (--exact, `exact.py`); the rest are copies

    @property
    def seqs(self) -> tuple[int, int]:
        used = [seq for seq, _ in self.video + self.audio]
        return min(used), max(used)

    @property
    def duration(self) -> float:
        """Seconds the video plays: from the keyframe to the end of the last frame."""
        last = max(s.pts + s.duration for _, s in self.video)
        return float(last - self.start)


def media_time(segments: list[SegmentMedia], when: datetime) -> Fraction:
    """`when` on the media timeline, through the segment that holds it (the last one dated at
    or before it; else the first)."""
    found = segments[0]
    for seg in segments:
        if seg.program_date_time <= when:
            found = seg
    return found.media_time(when)


def video_parameters(init: bytes) -> tuple[bytes | None, Fraction]:
    """(extradata, time base) of the video track of an init segment."""
    try:
        with av.open(io.BytesIO(init), "r") as c:
            stream = next(iter(c.streams.video), None)
            if stream is None:
                raise CutError("the init segment has no video stream")
            return stream.codec_context.extradata, stream.time_base
    except av.FFmpegError as e:
        raise CutError(f"cannot read the init segment: {e}") from None


def plan_cut(segments: list[SegmentMedia], start: datetime, end: datetime) -> Cut:
    """The samples of [start, end) from consecutive segments of one encoding, by seq."""
    if not segments:
        raise CutError("no segments in the range")
    from_media, to_media = media_time(segments, start), media_time(segments, end)
    video = [(seg.seq, s) for seg in segments for s in seg.samples["video"]]
    keys = [i for i, (_, s) in enumerate(video) if s.key and s.pts <= from_media]
    if not keys:
        raise CutError("no keyframe at or before the start of the range")
    first = keys[-1]
    key_seq, key = video[first]
    chosen = [(seq, s) for seq, s in video[first:] if s.dts < to_media]
    if not chosen:
        raise CutError("no video in the range")
    audio = [(seg.seq, s) for seg in segments for s in seg.samples["audio"] if key.pts <= s.pts < to_media]
    key_segment = next(seg for seg in segments if seg.seq == key_seq)
    wall = key_segment.program_date_time + timedelta(microseconds=round((key.pts - key_segment.media_start) * 1_000_000))
    return Cut(chosen, audio, key.pts, to_media, wall)


def write_clip(init_and_first: bytes, cut: Cut, tag: ClipTag, path: Path) -> None:
    """Write `cut` as an MP4 at `path` (atomically: a temporary name, then a rename).

    `init_and_first` is the init segment with a segment after it: the streams' parameters
    (codec, extradata, time base) are taken from it, as a remuxer takes them from its input.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        with av.open(io.BytesIO(init_and_first), "r") as src, av.open(str(tmp), "w", format="mp4") as out:
            kinds = [k for k in ("video", "audio") if getattr(cut, k)]
            streams = {}
            for kind in kinds:
                template = next(iter(getattr(src.streams, kind)), None)
                if template is None:
                    raise CutError(f"the init segment has no {kind} stream")
                streams[kind] = (out.add_stream_from_template(template), template.time_base)
            out.metadata["comment"] = tag.comment()
            for kind, sample in _interleaved(cut, kinds):
                stream, tb = streams[kind]
                # The keyframe's time in this stream's ticks, rounded down: no sample goes below 0.
                origin = math.floor(cut.start / tb)
                pkt = av.Packet(sample.data)
                pkt.time_base = tb
                pkt.pts = round(sample.pts / tb) - origin
                pkt.dts = round(sample.dts / tb) - origin
                pkt.duration = round(sample.duration / tb)
                pkt.is_keyframe = sample.key
                pkt.stream = stream
                out.mux(pkt)
        os.replace(tmp, path)
    except av.FFmpegError as e:
        raise CutError(f"cannot write the clip: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _interleaved(cut: Cut, kinds: list[str]) -> list[tuple[str, Sample]]:
    """Both kinds merged by decode time (each stays in its own order)."""
    lists = [[(s.dts, i, kind, s) for i, (_, s) in enumerate(getattr(cut, kind))] for kind in kinds]
    return [(kind, s) for _, _, kind, s in heapq.merge(*lists)]
