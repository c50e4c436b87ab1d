"""One chunk of a recording through the live transcoder (`LiveTranscoder`), unchanged: the
same ladder, preset and muxer options as live, so every chunk writes the same init segment
per rung, and its fMP4 keeps absolute media time in tfdt, so chunks concatenate.

The chunk is fed from the keyframe at or before its start and a little past its end (B-frames
may refer to a later picture); only pictures in [start, end) are encoded. Its media time is
the job's epoch plus source time: seqs are floor(t / D) on a wall-clock timeline, as live
feeds' are, which the catalog's date partitions and the archive's lookups assume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import av
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from ..config import LadderConfig
from ..media.boundaries import HALF_TICK
from ..media.transcode import TIME_BASE, LiveTranscoder, TranscodeError
from ..media.units import FeedStreams, MediaUnit, StreamInfo
from ..segment import Segment
from .errors import VodInputError
from .plan import Chunk
from .probe import reason

REORDER_S = 1.0  # video packets read past a chunk's end: the references its last pictures need
AUDIO_MARGIN_S = 0.1  # audio read either side of a chunk: a frame straddling a boundary


@dataclass
class ChunkOutput:
    index: int
    inits: dict[str, bytes]  # rendition -> init segment
    segments: list[Segment]  # every rung's, in the order they were cut
    codecs: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)  # where the time went


def _describe(stream: av.stream.Stream) -> StreamInfo:
    cc = stream.codec_context
    name = cc.codec.name if cc is not None and cc.codec is not None else "unknown"
    extradata = bytes(cc.extradata) if cc is not None and cc.extradata else None
    if stream.type == "video":
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        return StreamInfo("video", name, TIME_BASE, extradata, cc.width, cc.height,
                          cc.format.name if cc.format else None, float(rate), index=stream.index)
    return StreamInfo("audio", name, TIME_BASE, extradata, sample_rate=cc.sample_rate, layout=cc.layout.name,
                      sample_format=cc.format.name if cc.format else None, index=stream.index)


class _SpanTranscoder(LiveTranscoder):
    """The live transcoder, making only media time [start, end)."""

    def __init__(self, *args: object, span: tuple[float, float | None], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._span = span
        self._audio.start(span[0])  # the track starts with the chunk's first picture

    def _picture(self, frame: VideoFrame) -> None:
        t = float(frame.pts * TIME_BASE)
        start, end = self._span
        if t < start - HALF_TICK or (end is not None and t >= end - HALF_TICK):
            return
        super()._picture(frame)

    def _audio_frame(self, frame: AudioFrame) -> None:
        end = self._span[1]
        if end is not None and frame.pts is not None and float(frame.pts * TIME_BASE) >= end - HALF_TICK:
            return
        super()._audio_frame(frame)


def transcode_chunk(path: str, chunk: Chunk, *, feed: str, origin: float, epoch: float, ladder: LadderConfig,
                    segment_duration: float, part_duration: float) -> ChunkOutput:
    """Transcode `chunk` of the file at `path` (source times from `origin`, output at
    `epoch` + source time). Raises `VodInputError` with the stream and codec on bad media."""
    started = time.perf_counter()
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as err:
        raise VodInputError(f"{path}: cannot be opened: {reason(err)}") from None
    try:
        video = next(s for s in container.streams if s.type == "video")
        audio = next((s for s in container.streams if s.type == "audio"), None)
        streams = FeedStreams(_describe(video), _describe(audio) if audio is not None else None)
        start, end = epoch + chunk.start, None if chunk.last else epoch + chunk.end
        try:
            tx = _SpanTranscoder(feed, ladder, segment_duration, part_duration, streams, analyse=False,
                                 span=(start, end))
        except TranscodeError as err:
            raise VodInputError(str(err)) from None
        opened = time.perf_counter()
        # seek to the keyframe (FFmpeg lands on the one at or before the time asked)
        container.seek(round((origin + chunk.decode_from) / video.time_base), stream=video, backward=True)
        wanted = [video] + ([audio] if audio is not None else [])
        begun = False
        video_done = audio_done = audio is None
        batch: list[MediaUnit] = []
        out: list[Segment] = []
        try:
            for pkt in container.demux(wanted):
                ts = pkt.pts if pkt.pts is not None else pkt.dts
                if ts is None or pkt.size == 0 or pkt.time_base is None:
                    continue
                rel = float(ts * pkt.time_base) - origin
                kind = pkt.stream.type
                if kind == "video":
                    if not begun:  # decoding starts at the planned keyframe, not before
                        if not (pkt.is_keyframe and rel >= chunk.decode_from - 1e-3):
                            continue
                        begun = True
                    dts = float(pkt.dts * pkt.time_base) - origin if pkt.dts is not None else rel
                    if not chunk.last and dts >= chunk.end + REORDER_S:
                        video_done = True
                    elif not video_done:
                        batch.append(_unit("video", pkt, epoch + rel))
                else:
                    if not chunk.last and rel >= chunk.end + AUDIO_MARGIN_S:
                        audio_done = True
                    elif begun and rel >= chunk.start - AUDIO_MARGIN_S and not audio_done:
                        batch.append(_unit("audio", pkt, epoch + rel))
                if video_done and audio_done:
                    break
                if len(batch) >= 32:
                    out += [x for x in tx.push(batch) if isinstance(x, Segment)]
                    batch = []
            out += [x for x in tx.push(batch) if isinstance(x, Segment)]
            out += [x for x in tx.flush() if isinstance(x, Segment)]
        except TranscodeError as err:
            raise VodInputError(str(err)) from None
        except av.error.FFmpegError as err:
            raise VodInputError(f"{path}: demuxing failed at chunk {chunk.index}: {reason(err)}") from None
        done = time.perf_counter()
        return ChunkOutput(chunk.index, tx.init_segments, out, tx.codecs,
                           {"open": opened - started, "transcode": done - opened})
    finally:
        container.close()


def _unit(kind: str, pkt: av.Packet, t: float) -> MediaUnit:
    t = round(t * 90000) / 90000
    return MediaUnit(kind, bytes(pkt), t, t, bool(pkt.is_keyframe))  # type: ignore[arg-type]
