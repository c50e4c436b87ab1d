"""What a recording holds, read without decoding: its streams, video keyframes and length.

Only the video stream is demuxed (packet headers, no pictures decoded), so a two-hour file is
probed in seconds. A file that FFmpeg cannot open, with no video, a codec it cannot decode or
no keyframe fails here with a `VodInputError` naming the stream and codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class SourceInfo:
    """Times are seconds from the first video picture (`origin` on the file's own clock)."""

    path: str
    origin: float
    duration: float  # up to the end of the last picture
    keyframes: tuple[float, ...]
    fps: float
    video_codec: str
    audio_codec: str | None


def reason(err: BaseException) -> str:
    """An FFmpeg error as a person reads it: its text, without errno or the file name."""
    if isinstance(err, av.error.FFmpegError) and err.strerror:
        return str(err.strerror)
    return str(err) or type(err).__name__


def _decodable(kind: str, stream: av.stream.Stream) -> str:
    cc = stream.codec_context
    name = cc.codec.name if cc is not None and cc.codec is not None else None
    if name is None:
        raise VodInputError(f"{kind} stream {stream.index}: codec unknown to FFmpeg, cannot be decoded")
    try:
        av.codec.Codec(name, "r")
    except (av.error.FFmpegError, ValueError):
        raise VodInputError(f"{kind} stream {stream.index}: codec {name!r} cannot be decoded") from None
    return name


def probe(path: str | Path) -> SourceInfo:
    path = str(path)
    if not Path(path).is_file():
        raise VodInputError(f"{path}: no such file")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise VodInputError(f"{path}: not a media file FFmpeg can read ({reason(err)})") from None
    try:
        videos = [s for s in container.streams if s.type == "video"]
        if not videos:
            raise VodInputError(f"{path}: no video stream")
        video = videos[0]
        video_codec = _decodable("video", video)
        audios = [s for s in container.streams if s.type == "audio"]
        audio_codec = _decodable("audio", audios[0]) if audios else None
        tb = video.time_base
        keys: list[float] = []
        end = None
        first = None
        try:
            for pkt in container.demux(video):
                ts = pkt.pts if pkt.pts is not None else pkt.dts
                if ts is None or pkt.size == 0:
                    continue
                t = float(ts * tb)
                first = t if first is None else min(first, t)
                stop = t + float((pkt.duration or 0) * tb)
                end = stop if end is None else max(end, stop)
                if pkt.is_keyframe:
                    keys.append(t)
        except (av.error.FFmpegError, OSError) as err:
            raise VodInputError(f"{path}: video stream {video.index} ({video_codec}) is corrupt: {reason(err)}") from None
        if first is None or end is None:
            raise VodInputError(f"{path}: video stream {video.index} ({video_codec}) holds no pictures")
        if not keys:
            raise VodInputError(f"{path}: video stream {video.index} ({video_codec}) has no keyframe")
        rate = video.average_rate or video.guessed_rate
        fps = float(rate) if rate else 30.0
        if end - first <= 0:
            raise VodInputError(f"{path}: video stream {video.index} ({video_codec}) has no duration")
        return SourceInfo(path, first, round(end - first, 6), tuple(sorted(round(k - first, 6) for k in set(keys))),
                          fps, video_codec, audio_codec)
    finally:
        container.close()


from .errors import VodInputError  # noqa: E402 - after the helpers that raise it, for readers
