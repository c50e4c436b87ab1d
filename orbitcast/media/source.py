"""Live sources opened with PyAV: files (paced at real time, optionally looped), lavfi graphs,
and network URLs (udp, rtmp, rtsp, http(s) and HLS, tcp directly; srt through a relay, see
relay.py, since PyAV's FFmpeg has no SRT). docs/ingest.md lists the URL forms.

A `Source` turns whatever it opens into `MediaUnit`s on one continuous media timeline, so that
a loop or a reconnect never makes time go backwards downstream. Every failure is a
`SourceError` whose message is the reason a user sees in `/api/feeds`.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import av
import av.error

from .peers import called_address, publisher_of
from .relay import Relay, RelayEnded, RelayFailed, RelayIdle, is_listener, needs_relay, redact
from .units import FeedStreams, MediaUnit, StreamInfo

NETWORK_SCHEMES = ("udp://", "srt://", "rtmp://", "rtmps://", "rtsp://", "http://", "https://", "tcp://")
LAVFI_PREFIX = "lavfi:"
# Raw frames that live only in memory must travel as planes (see units.py).
IN_MEMORY_VIDEO = {"wrapped_avframe"}
PEER_GONE = (errno.EIO, errno.EPIPE, errno.ECONNRESET)  # a listener's sender closed its connection
READ_TIMEOUT = 5.0  # how long a network session may go without media, unless told otherwise
# After a stall longer than this, capture times are re-anchored to the wall clock.
REANCHOR_AFTER = 1.0
REANCHOR_PACED_AFTER = 5.0


class SourceError(Exception):
    """The source cannot be opened or read; str(err) is the reason shown to users."""


class NoSender(SourceError):
    """A listening source (SRT listener, RTMP or TCP with listen=1) that no sender reached
    within the open timeout: the feed waits for one, it has not failed."""


class InputQuiet(SourceError):
    """A network input sent nothing for the read timeout (UDP or RTP with no end of stream, a
    peer gone without closing): lost, like one that closed, not a fault of the feed."""


class SourceEnded(Exception):
    """The source ended (a file without loop, or a network stream that closed)."""


def is_network(url: str) -> bool:
    return url.startswith(NETWORK_SCHEMES)


def _listen_address(url: str, options: dict[str, str]) -> str | None:
    """host:port a listening source (RTMP or TCP with listen=1) waits on, else None."""
    if options.get("listen") in ("1", "2") or "listen=1" in url.partition("?")[2]:
        return url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    return None


def listen_address(url: str, options: dict[str, str] | None = None) -> str | None:
    """host:port where a source of `url` waits for a sender to connect, None for one it reaches."""
    if needs_relay(url):
        return urlsplit(url).netloc if is_listener(url) else None
    if url.startswith("udp://"):
        # it binds its port and waits for datagrams: until they come it waits, not fails
        return urlsplit(url).netloc
    return _listen_address(url, options or {})


def _reason(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError):
        return f"source not found: {err.filename or err}"
    if isinstance(err, av.error.InvalidDataError):
        return "invalid data: the source is corrupt or not a media file"
    if isinstance(err, av.error.FFmpegError):
        return f"{type(err).__name__}: {err.strerror or err}"
    return f"{type(err).__name__}: {err}"


def _codec_name(s: av.stream.Stream) -> str:
    """The stream's decoder, or 'unknown' where FFmpeg has none (the transcoder then names
    the stream in the reason it fails)."""
    cc = s.codec_context  # None where FFmpeg does not know the codec at all
    return cc.codec.name if cc is not None and cc.codec is not None else "unknown"


def _pick(streams: list[av.stream.Stream]) -> av.stream.Stream | None:
    """The first stream FFmpeg can decode, leaving out cover art; else the first, so that
    the reason a feed fails names it."""
    media = [s for s in streams if not s.disposition & av.stream.Disposition.attached_pic]
    return next((s for s in media if _codec_name(s) != "unknown"), media[0] if media else None)


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
        read_timeout: float = READ_TIMEOUT,
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
        self._relay: Relay | None = None
        self._last_link: dict | None = None  # the last relayed session's, once it has ended
        self._publisher: tuple[int, str] | None = None  # (generation, address) of a listener's sender
        self._read_any = False
        self._anchor_time = 0.0
        self._anchor_wall: float | None = None
        self._anchor_mono = 0.0
        # Each re-anchor moves the program date-times ahead of the media time (a jump between
        # two adjacent segments' dates): shown in /api/feeds so that a jump is never a mystery.
        self.reanchors = 0
        self.last_reanchor: dict | None = None
        self._frame_duration = 1 / 30
        self._last = {"video": -1.0, "audio": -1.0}  # newest presentation time
        self._last_decode = {"video": -1.0, "audio": -1.0}

    # -- opening ---------------------------------------------------------------------------
    def _open_container(self, options: dict[str, str]) -> av.container.InputContainer:
        url, fmt = self.url, None
        if url.startswith(LAVFI_PREFIX):
            url, fmt = url[len(LAVFI_PREFIX):], "lavfi"
        elif not is_network(url) and not Path(url).exists():
            raise SourceError(f"source not found: {url}")
        if needs_relay(url):
            return self._open_relayed(url)
        try:
            kwargs: dict = {"format": fmt, "options": {**self.options, **options}}
            if is_network(url):
                kwargs["timeout"] = self.timeouts
            return av.open(url, **kwargs)  # type: ignore[return-value]
        except av.error.ExitError:
            # PyAV's open timeout: nothing arrived (or no publisher came to a listener).
            where = self.listening
            if where:
                raise NoSender(f"listener on {where}: no sender within {self.timeouts[0]:g} s") from None
            raise SourceError(f"no media from {redact(url)} within {self.timeouts[0]:g} s") from None
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise SourceError(_reason(err)) from None

    def _open_relayed(self, url: str) -> av.container.InputContainer:
        relay = self._relay = Relay(url, open_timeout=self.timeouts[0], read_timeout=self.timeouts[1])
        try:
            relay.start()
            return av.open(relay, format="nut", options=self.options)  # type: ignore[return-value]
        except RelayFailed as err:
            raise SourceError(str(err)) from None
        except (av.error.FFmpegError, OSError, ValueError):
            raise self._relay_outcome() from None

    def interrupt(self) -> None:
        """From another thread: end the relay's wait (for a sender, or for data); the session
        then ends as closed. The relay stays this session's until `close`."""
        relay = self._relay
        if relay is not None:
            relay.close()

    @property
    def listening(self) -> str | None:
        """host:port where this source waits for a sender to connect, None for one it reaches."""
        return listen_address(self.url, self.options)

    @property
    def relay_pid(self) -> int | None:
        """The ffmpeg relay of the open session (SRT), None for sources PyAV reads itself."""
        return self._relay.pid if self._relay is not None else None

    def link(self) -> dict | None:
        """Who is on the other end: `remote_address` for network inputs, and for SRT the link's
        own counters (`srt`). For a listener, the open session's sender once one is connected,
        else the last session's; for a source we call, the host and port called. None for
        files and lavfi."""
        if needs_relay(self.url):
            relay = self._relay
            current = relay.link() if relay is not None else None
            if current is not None and current["remote_address"] is not None:
                return current
            return self._last_link or current
        if not is_network(self.url):
            return None
        if _listen_address(self.url, self.options) is None:
            return {"remote_address": called_address(self.url)}
        if self._container is not None and (self._publisher is None or self._publisher[0] != self.generation):
            self._find_publisher()
        return {"remote_address": self._publisher[1] if self._publisher else None}

    def _find_publisher(self) -> None:
        listen = _listen_address(self.url, self.options)
        if listen is None:
            return
        # FFmpeg's socket: the kernel's tables say who connected (RTMP's default port included)
        found = publisher_of(called_address(self.url) or listen)
        if found is not None:
            self._publisher = (self.generation, found)

    def _relay_outcome(self) -> SourceError | SourceEnded:
        assert self._relay is not None
        outcome = self._relay.outcome()
        if isinstance(outcome, RelayEnded):
            return SourceEnded(str(outcome))
        return NoSender(str(outcome)) if isinstance(outcome, RelayIdle) else SourceError(str(outcome))

    def open(self, options: dict[str, str] | None = None, read_timeout: float | None = None) -> FeedStreams:
        """Open a session; `options` are added to the source's for this session only, and
        `read_timeout` replaces the source's from now on (an HLS origin's depends on its
        target duration, known from its playlist)."""
        self.close()
        if read_timeout is not None:
            self.timeouts = (self.timeouts[0], read_timeout)
        container = self._open_container(options or {})
        video = _pick([s for s in container.streams if s.type == "video"])
        if video is None:
            container.close()
            raise SourceError("no video stream in source")
        audio = _pick([s for s in container.streams if s.type == "audio"])
        self._container = container
        self._video, self._audio = video, audio
        self.generation += 1
        if is_network(self.url) and not needs_relay(self.url):
            self._find_publisher()  # now, while it is connected: a short session may end unasked
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
        if cc is None:
            return StreamInfo("video", "unknown", Fraction(1, 90000), index=s.index)
        if _codec_name(s) in IN_MEMORY_VIDEO:
            return StreamInfo("video", "rawvideo", Fraction(1, 90000), None, cc.width, cc.height, "yuv420p", float(rate), index=s.index)
        return StreamInfo(
            "video", _codec_name(s), Fraction(1, 90000), bytes(cc.extradata) if cc.extradata else None,
            cc.width, cc.height, cc.format.name if cc.format else None, float(rate), index=s.index,
        )

    def _describe_audio(self, s: av.audio.stream.AudioStream | None) -> StreamInfo | None:
        if s is None:
            return None
        cc = s.codec_context
        if cc is None:
            return StreamInfo("audio", "unknown", Fraction(1, 90000), index=s.index)
        return StreamInfo(
            "audio", _codec_name(s), Fraction(1, 90000), bytes(cc.extradata) if cc.extradata else None,
            sample_rate=cc.sample_rate, layout=cc.layout.name, sample_format=cc.format.name if cc.format else None,
            index=s.index,
        )

    def close(self) -> None:
        if self._relay is not None:
            self._relay.close()
            link = self._relay.link()
            if link is not None and link["remote_address"] is not None:
                self._last_link = link
            self._relay = None
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
        self._read_any = False
        try:
            for packet in self._container.demux(streams):
                self._read_any = True
                yield from self._units_of(packet)
        except (av.error.FFmpegError, OSError) as err:
            raise self._end_reason(err) from None
        raise self._end_reason(None)

    def _end_reason(self, err: BaseException | None) -> SourceEnded | SourceError:
        if self._relay is not None:
            return self._relay_outcome()
        if err is None or isinstance(err, av.error.EOFError):
            return SourceEnded("end of source")
        if isinstance(err, av.error.ExitError) and is_network(self.url):
            return InputQuiet(f"no data from {redact(self.url)} for {self.timeouts[1]:g} s")
        if self._read_any and _listen_address(self.url, self.options) and getattr(err, "errno", None) in PEER_GONE:
            # How FFmpeg's RTMP listener sees the publisher leave: the end of that connection
            # (EPIPE where we were behind and it had closed before our acknowledgement went out).
            return SourceEnded("the publisher disconnected")
        return SourceError(_reason(err))

    def _units_of(self, packet: av.Packet) -> Iterator[MediaUnit]:
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.time_base is None:
            return
        kind = packet.stream.type
        if kind == "video" and packet.stream.codec_context.name in IN_MEMORY_VIDEO:
            for frame in packet.decode():
                planes = frame.reformat(format="yuv420p").to_ndarray().tobytes()
                yield from self._timed(kind, planes, float(ts * packet.time_base), True, float(ts * packet.time_base))
            return
        if packet.size == 0:
            return
        dts = float(packet.dts * packet.time_base) if packet.dts is not None else None
        yield from self._timed(kind, bytes(packet), float(ts * packet.time_base), bool(packet.is_keyframe), dts)

    def _timed(self, kind: str, data: bytes, pts: float, key: bool, dts: float | None = None) -> Iterator[MediaUnit]:
        if self._first is None:
            self._first = pts
        t = round((self.next_time + pts - self._first) * 90000) / 90000
        # Packets come in decode order: with B-frames presentation times go back and forth,
        # so whether the source jumped back in time is judged on decode times (a packet
        # without one, as Matroska's first B-frames, cannot decode before its presentation).
        d = None if dts is None else round((self.next_time + dts - self._first) * 90000) / 90000
        if (t if d is None else d) < self._last_decode[kind] or t < self._start:  # e.g. audio priming before the first frame
            return  # a source that jumps back in time: drop, downstream time never goes back
        if d is not None:
            self._last_decode[kind] = d
        self._last[kind] = max(self._last[kind], t)
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
            was = self._anchor_wall + (t - self._anchor_time)
            self._anchor_wall, self._anchor_time, self._anchor_mono = self.clock(), t, now_mono
            self.reanchors += 1
            self.last_reanchor = {"at": round(self._anchor_wall, 3), "media_time": round(t, 6),
                                  "jump_s": round(self._anchor_wall - was, 3)}
        elif self.realtime and due > now_mono:
            time.sleep(due - now_mono)
        return self._anchor_wall + (t - self._anchor_time)

    def end_session(self) -> None:
        """Continue the timeline after the newest unit when the source is opened again."""
        # Units of the next session that would overlap this one (audio longer than the
        # pictures) are dropped by _timed, since _last carries over.
        if self._last["video"] >= 0:
            # max: a slate may have taken the timeline further while no session was open.
            self.next_time = max(self.next_time, self._last["video"] + self._frame_duration)
        self.close()

    def new_generation(self) -> int:
        """A generation for media another producer (the feed's slate) puts on this timeline:
        the transcoder then rebuilds its decoders for it, and again for the next session."""
        self.generation += 1
        return self.generation

    def skip_to(self, t: float) -> None:
        """Another producer (the slate) filled the timeline up to `t`: the next session starts
        there, so its units come after that media, never on top of it."""
        self.next_time = max(self.next_time, round(t * 90000) / 90000)
