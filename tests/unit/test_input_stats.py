"""The input as /api/feeds shows it: protocol, codecs, size and rate, bitrate, idle time."""

from __future__ import annotations

from fractions import Fraction

import pytest

from orbitcast.media.input_stats import InputMeter, protocol_of
from orbitcast.media.units import FeedStreams, MediaUnit, StreamInfo

STREAMS = FeedStreams(
    video=StreamInfo("video", "h264", Fraction(1, 90000), width=1920, height=1080, fps=29.97),
    audio=StreamInfo("audio", "mp2", Fraction(1, 90000), sample_rate=48000, layout="stereo"),
    generation=1,
)


def unit(size: int, t: float = 0.0) -> MediaUnit:
    return MediaUnit("video", b"x" * size, t, t, False)


@pytest.mark.parametrize("url,protocol", [
    ("srt://0.0.0.0:9000?mode=listener", "srt"), ("rtmp://0.0.0.0/live/k", "rtmp"), ("udp://239.1.1.1:5000", "udp"),
    ("lavfi:testsrc2", "lavfi"), ("/media/clip.ts", "file"), ("clip.mp4", "file"),
])
def test_the_protocol_is_named_from_the_source(url: str, protocol: str) -> None:
    assert protocol_of(url) == protocol


def test_codecs_size_rate_and_bitrate_of_what_arrived() -> None:
    meter = InputMeter("srt://0.0.0.0:9000?mode=listener")
    for second in range(5):  # 250 kB a second for five seconds: 2 Mbit/s
        meter.observe(STREAMS, [unit(125_000), unit(125_000)], now=100.0 + second)
    snap = meter.snapshot(now=104.5)
    assert snap["protocol"] == "srt"
    assert snap["video"] == {"codec": "h264", "width": 1920, "height": 1080, "fps": 29.97}
    assert snap["audio"] == {"codec": "mp2", "sample_rate": 48000, "layout": "stereo"}
    assert snap["bitrate_bps"] == 2_000_000
    assert snap["last_media_at"] == 104.0 and snap["idle_s"] == 0.5


def test_an_input_that_stopped_shows_idle_time_and_no_bitrate() -> None:
    meter = InputMeter("udp://127.0.0.1:5000")
    meter.observe(STREAMS, [unit(1000)], now=10.0)
    snap = meter.snapshot(now=30.0)
    assert snap["bitrate_bps"] == 0 and snap["idle_s"] == 20.0


def test_before_any_media_nothing_is_claimed() -> None:
    snap = InputMeter("rtmp://0.0.0.0/live/k").snapshot(now=1.0)
    assert snap["video"] is None and snap["audio"] is None and snap["last_media_at"] is None and snap["bitrate_bps"] == 0
