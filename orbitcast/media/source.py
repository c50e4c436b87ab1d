"""Live sources opened with PyAV: files (paced at real time, optionally looped), lavfi graphs,
and network URLs (udp, srt, rtmp, rtsp, http(s)).

A `Source` turns whatever it opens into `MediaUnit`s on one continuous media timeline, so that
a loop or a reconnect never makes time go backwards downstream. Every failure is a
`SourceError` whose message is the reason a user sees in `/api/feeds`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.error

from .units import FeedStreams, MediaUnit, StreamInfo

NETWORK_SCHEMES = ("udp://", "srt://", "rtmp://", "rtmps://", "rtsp://", "http://", "https://", "tcp://")
LAVFI_PREFIX = "lavfi:"
# Raw frames that live only in memory must travel as planes (see units.py).
IN_MEMORY_VIDEO = {"wrapped_avframe"}
# After a stall longer than this, capture times are re-anchored to the wall clock.
REANCHOR_AFTER = 1.0
REANCHOR_PACED_AFTER = 5.0


class SourceError(Exception):
    """The source cannot be opened or read; str(err) is the reason shown to users."""


class SourceEnded(Exception):
    """The source ended (a file without loop, or a network stream that closed)."""


def is_network(url: str) -> bool:
    return url.startswith(NETWORK_SCHEMES)


def _reason(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError):
        return f"source not found: {err.filename or err}"
    if isinstance(err, av.error.InvalidDataError):
        return "invalid data: the source is corrupt or not a media file"
    if isinstance(err, av.error.FFmpegError):
        return f"{type(err).__name__}: {err.strerror or err}"
    return f"{type(err).__name__}: {err}"


class Source:
    """One open attempt after another of the same URL, on one continuous timeline."""

    def __init__(
        self,
        url: str,
        *,
        loop: bool = True,
        realtime: bool = True,
        options: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        start_time: float = 0.0,
    ) -> None:
        self.url = url
        self.loop = loop and not is_network(url)
        self.realtime = realtime and not is_network(url)
        self.options = dict(options or {})
        self.clock = clock
        self.timeouts = (open_timeout, read_timeout)
        # Where the timeline continues after a loop or reopen. Starting it at the wall clock
        # (see FeedRunner) makes seq numbers unique across restarts of the pipeline.
        self.next_time = self._start = round(start_time * 90000) / 90000
        self.generation = 0
        self._container: av.container.InputContainer | None = None
        self._anchor_time = 0.0
        self._anchor_wall: float | None = None
        self._anchor_mono = 0.0
        self._frame_duration = 1 / 30
        self._last = {"video": -1.0, "audio": -1.0}

    # -- opening ---------------------------------------------------------------------------
    def _open_container(self) -> av.container.InputContainer:
        url, fmt = self.url, None
        if url.startswith(LAVFI_PREFIX):
            url, fmt = url[len(LAVFI_PREFIX):], "lavfi"
        elif not is_network(url) and not Path(url).exists():
            raise SourceError(f"source not found: {url}")
        try:
            kwargs: dict = {"format": fmt, "options": self.options}
            if is_network(url):
                kwargs["timeout"] = self.timeouts
            return av.open(url, **kwargs)  # type: ignore[return-value]
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise SourceError(_reason(err)) from None

    def open(self) -> FeedStreams:
        self.close()
        container = self._open_container()
        video = next((s for s in container.streams if s.type == "video"), None)
        if video is None:
            container.close()
            raise SourceError("no video stream in source")
        audio = next((s for s in container.streams if s.type == "audio"), None)
        self._container = container
        self._video, self._audio = video, audio
        self.generation += 1
        rate = video.average_rate or video.guessed_rate or Fraction(30)
        self._frame_duration = 1.0 / float(rate)
        # The timeline is anchored on video: audio that starts earlier (encoder priming) or runs
        # past the last frame must not push the next loop's pictures later.
        self._first: float | None = (
            float(video.start_time * video.time_base) if video.start_time is not None and video.time_base else None
        )
        return FeedStreams(video=self._describe_video(video), audio=self._describe_audio(audio), generation=self.generation)

    def _describe_video(self, s: av.video.stream.VideoStream) -> StreamInfo:
        cc = s.codec_context
        rate = s.average_rate or s.guessed_rate or Fraction(30)
        if cc.name in IN_MEMORY_VIDEO:
            return StreamInfo("video", "rawvideo", Fraction(1, 90000), None, cc.width, cc.height, "yuv420p", float(rate))
        return StreamInfo(
            "video", cc.name, Fraction(1, 90000), bytes(cc.extradata) if cc.extradata else None,
            cc.width, cc.height, cc.format.name if cc.format else None, float(rate),
        )

    def _describe_audio(self, s: av.audio.stream.AudioStream | None) -> StreamInfo | None:
        if s is None:
            return None
        cc = s.codec_context
        return StreamInfo(
            "audio", cc.name, Fraction(1, 90000), bytes(cc.extradata) if cc.extradata else None,
            sample_rate=cc.sample_rate, layout=cc.layout.name, sample_format=cc.format.name if cc.format else None,
        )

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except av.error.FFmpegError:
                pass
            self._container = None

    # -- reading ---------------------------------------------------------------------------
    def units(self) -> Iterator[MediaUnit]:
        """Units of the open container; raises SourceEnded at the end, SourceError on failure."""
        if self._container is None:
            raise SourceError("source is not open")
        streams = [self._video] + ([self._audio] if self._audio is not None else [])
        try:
            for packet in self._container.demux(streams):
                yield from self._units_of(packet)
        except (av.error.FFmpegError, OSError) as err:
            if isinstance(err, av.error.EOFError):
                raise SourceEnded("end of source") from None
            raise SourceError(_reason(err)) from None
        raise SourceEnded("end of source")

    def _units_of(self, packet: av.Packet) -> Iterator[MediaUnit]:
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.time_base is None:
            return
        kind = packet.stream.type
        if kind == "video" and packet.stream.codec_context.name in IN_MEMORY_VIDEO:
            for frame in packet.decode():
                planes = frame.reformat(format="yuv420p").to_ndarray().tobytes()
                yield from self._timed(kind, planes, float(ts * packet.time_base), True)
            return
        if packet.size == 0:
            return
        yield from self._timed(kind, bytes(packet), float(ts * packet.time_base), bool(packet.is_keyframe))

    def _timed(self, kind: str, data: bytes, pts: float, key: bool) -> Iterator[MediaUnit]:
        if self._first is None:
            self._first = pts
        t = round((self.next_time + pts - self._first) * 90000) / 90000
        if t < self._last[kind] or t < self._start:  # e.g. audio priming before the first frame
            return  # a source that jumps back in time: drop, downstream time never goes back
        self._last[kind] = t
        capture = self._capture_for(t)
        yield MediaUnit(kind, data, t, capture, key)  # type: ignore[arg-type]

    def _capture_for(self, t: float) -> float:
        now_mono = time.monotonic()
        if self._anchor_wall is None:
            self._anchor_wall, self._anchor_time, self._anchor_mono = self.clock(), t, now_mono
        due = self._anchor_mono + (t - self._anchor_time)
        if now_mono - due > (REANCHOR_PACED_AFTER if self.realtime else REANCHOR_AFTER):
            # The source stalled (or was reopened after a pause): its media time no longer
            # matches the wall clock. A paced source that is only a little late (a busy
            # machine) catches up instead, so its program date-times stay evenly spaced.
            self._anchor_wall, self._anchor_time, self._anchor_mono = self.clock(), t, now_mono
        elif self.realtime and due > now_mono:
            time.sleep(due - now_mono)
        return self._anchor_wall + (t - self._anchor_time)

    def end_session(self) -> None:
        """Continue the timeline after the newest unit when the source is opened again."""
        # Units of the next session that would overlap this one (audio longer than the
        # pictures) are dropped by _timed, since _last carries over.
        if self._last["video"] >= 0:
            self.next_time = self._last["video"] + self._frame_duration
        self.close()
