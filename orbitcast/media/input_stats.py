"""What an operator of a relay looks at first: what the input is and whether it is flowing.

`InputMeter` watches the batches a feed hands on (never the slate's) and gives `/api/feeds`
the input's protocol, codecs, picture size and rate, its bitrate over the last few seconds and
when its newest media arrived; beside them, whether the input's picture is black or frozen and
its sound silent, as the transcoder that decodes it reports (signal_health.py).
"""

from __future__ import annotations

from collections import deque
from urllib.parse import urlsplit

from .signal_health import NO_SIGNAL
from .units import FeedStreams, MediaUnit

WINDOW_S = 5.0  # bitrate over this much wall-clock time


def protocol_of(url: str) -> str:
    if url.startswith("lavfi:"):
        return "lavfi"
    scheme = urlsplit(url).scheme
    return scheme if scheme and "://" in url else "file"


class InputMeter:
    def __init__(self, url: str) -> None:
        self.protocol = protocol_of(url)
        self._streams: FeedStreams | None = None
        self._arrivals: deque[tuple[float, int]] = deque()  # (wall time, bytes)
        self._last_at: float | None = None
        self._signal: dict = dict(NO_SIGNAL)

    def signal(self, states: dict) -> None:
        """The input's picture and sound states, as the transcoder last reported them."""
        self._signal = {k: states.get(k) for k in NO_SIGNAL}

    def end_session(self) -> None:
        """The input went away: its picture and sound are unknown until it is back."""
        self._signal = dict(NO_SIGNAL)

    def observe(self, streams: FeedStreams, batch: list[MediaUnit], now: float) -> None:
        self._streams = streams
        self._arrivals.append((now, sum(len(u.data) for u in batch)))
        self._last_at = now
        while self._arrivals and self._arrivals[0][0] < now - WINDOW_S:
            self._arrivals.popleft()

    def snapshot(self, now: float) -> dict:
        video = self._streams.video if self._streams else None
        audio = self._streams.audio if self._streams else None
        recent = [b for t, b in self._arrivals if t >= now - WINDOW_S]
        return {
            "protocol": self.protocol,
            "video": None if video is None else {
                "codec": video.codec, "width": video.width, "height": video.height,
                "fps": round(video.fps, 3) if video.fps else None,
            },
            "audio": None if audio is None else {
                "codec": audio.codec, "sample_rate": audio.sample_rate, "layout": audio.layout,
            },
            # raw planes from lavfi are not a bitrate anyone sent: counted all the same
            "bitrate_bps": round(sum(recent) * 8 / WINDOW_S) if recent else 0,
            "remote_address": None,  # the source fills it in where it knows it (Source.link)
            "last_media_at": self._last_at,
            "idle_s": None if self._last_at is None else round(max(0.0, now - self._last_at), 2),
            **self._signal,
        }
