"""A window of a feed's source through the ladder, as the live pipeline encodes it.

The source is read with the pipeline's own `Source` (not paced: a file or lavfi graph goes as
fast as the machine allows; a network source comes at its own pace) and pushed through the
pipeline's own `LiveTranscoder`, with the feed's ladder, segment and part durations. Each rung's
init segment and segments are written out as one fragmented MP4 file, as a player would join
them. The transcoder's frame tap hands over every picture it encodes, at source size, before
it is scaled: those pictures, losslessly stored (FFV1), are the reference. The tap sees exactly
the frames each rung encodes (after the transcoder's frame-rate limit), so frame i of the
reference is frame i of every rung.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import VideoFrame

from ..config import LadderConfig
from ..media.feed_runner import batch_seconds_for
from ..media.relay import redact
from ..media.source import Source, SourceEnded, SourceError
from ..media.transcode import LiveTranscoder, TranscodeError
from ..media.units import MediaUnit
from ..segment import Part, Segment
from .errors import QualityError

REFERENCE_NAME = "reference.mkv"


@dataclass
class EncodedWindow:
    """What `encode_window` wrote: the reference and one file per rung, all of `frames` frames."""

    folder: Path
    reference: Path
    rungs: dict[str, Path]  # rung name -> init + segments, in ladder order
    frames: int
    width: int  # of the reference (the source's pictures)
    height: int
    fps: float  # the transcoder's output rate
    seconds: float  # media time covered
    encode_s: float  # wall time the source and the ladder took
    segment_bytes: dict[str, int] = field(default_factory=dict)


class _Reference:
    """The source pictures the transcoder encodes, written losslessly as they come."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.rate = Fraction(fps).limit_denominator(1001)
        self.container: av.container.OutputContainer | None = None
        self.stream: av.video.stream.VideoStream | None = None
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self.first: float | None = None
        self.last = 0.0

    def __call__(self, frame: VideoFrame, media_time: float, capture: float) -> None:
        size = (frame.width, frame.height)
        if self.container is None:
            self.size = size
            self.container = av.open(str(self.path), "w")
            stream = self.container.add_stream("ffv1", rate=self.rate)
            stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            stream.options = {"level": "3", "slices": "4", "threads": "2"}
            self.stream = stream
        elif size != self.size:
            # One reference size per comparison; the transcoder itself would scale on regardless.
            was = "x".join(map(str, self.size or ()))
            raise QualityError(f"the source changed its picture size from {was} to {frame.width}x{frame.height} "
                               "within the window; measure a shorter one")
        assert self.stream is not None
        # The rungs are scaled from this picture to yuv420p; the reference is it at source size.
        picture = frame.reformat(format="yuv420p")
        # Numbered in order: the comparison pairs frames by their index, not their time.
        picture.pts, picture.time_base = self.frames, 1 / self.rate
        self.container.mux(self.stream.encode(picture))
        self.frames += 1
        self.first = media_time if self.first is None else self.first
        self.last = media_time

    def close(self) -> None:
        if self.container is not None and self.stream is not None:
            self.container.mux(self.stream.encode(None))
            self.container.close()


def _reason(url: str, err: Exception) -> str:
    """The source's failure, naming the source once."""
    text, where = str(err), redact(url)
    return text if where in text else f"source {where}: {text}"


def encode_window(
    url: str,
    options: dict[str, str],
    ladder: LadderConfig,
    segment_duration: float,
    part_duration: float,
    seconds: float,
    folder: Path,
    progress: Callable[[str], None] | None = None,
) -> EncodedWindow:
    """Encode `seconds` of the source at `url` through `ladder` into `folder`."""
    say = progress or (lambda line: None)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    source = Source(url, loop=False, realtime=False, options=options)
    try:
        streams = source.open()
    except SourceError as err:
        raise QualityError(_reason(url, err)) from None
    fps = float(ladder.fps or streams.video.fps or 30.0)
    reference = _Reference(folder / REFERENCE_NAME, fps)
    segments: dict[str, list[bytes]] = {r.name: [] for r in ladder.rungs}
    try:
        transcoder = LiveTranscoder("quality", ladder, segment_duration, part_duration, streams, frame_tap=reference)
        batch_s = batch_seconds_for(part_duration)
        batch: list[MediaUnit] = []
        first: float | None = None
        done: list[Part | Segment] = []
        try:
            for unit in source.units():
                first = unit.time if first is None else first
                if unit.kind == "video" and unit.time - first >= seconds:
                    break
                batch.append(unit)
                if unit.time - batch[0].time >= batch_s:
                    done += transcoder.push(batch)
                    batch = []
        except SourceEnded:
            pass  # a file shorter than the window: measure what there is
        except SourceError as err:
            raise QualityError(_reason(url, err)) from None
        done += transcoder.push(batch)
        done += transcoder.flush()
        inits = transcoder.init_segments
    except TranscodeError as err:
        raise QualityError(_reason(url, err)) from None
    finally:
        source.close()
        reference.close()
    if reference.frames == 0 or reference.size is None:
        raise QualityError(f"source {redact(url)} gave no pictures")
    for item in done:
        if isinstance(item, Segment):
            segments[item.rendition].append(item.data)
    paths: dict[str, Path] = {}
    for rung in ladder.rungs:
        path = folder / f"{rung.name}.mp4"
        path.write_bytes(inits[rung.name] + b"".join(segments[rung.name]))
        paths[rung.name] = path
    took = time.monotonic() - started
    span = (reference.last - (reference.first or 0.0)) + 1.0 / fps
    say(f"encoded {reference.frames} frames ({span:.1f} s) of {reference.size[0]}x{reference.size[1]} "
        f"through {len(ladder.rungs)} rungs in {took:.1f} s")
    return EncodedWindow(folder, reference.path, paths, reference.frames, reference.size[0], reference.size[1], fps,
                         round(span, 3), round(took, 2), {k: sum(map(len, v)) for k, v in segments.items()})
