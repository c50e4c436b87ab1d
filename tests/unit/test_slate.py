"""The "signal lost" slate: its card, its size and rate, and its pacing on the feed's timeline."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from orbitcast.media.slate import SlateCard, SlatePlayer, slate_format, slate_streams
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.units import FeedStreams, MediaUnit, StreamInfo
from tests.media import make_clip


def _video(width: int, height: int, fps: float) -> StreamInfo:
    return StreamInfo("video", "h264", Fraction(1, 90000), None, width, height, "yuv420p", fps)


def _decode(planes: bytes, width: int, height: int) -> np.ndarray:
    """The planes as the transcoder reads them (rawvideo yuv420p), back as a luma array."""
    ctx = av.CodecContext.create("rawvideo", "r")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.open()
    frames = ctx.decode(av.Packet(planes))
    assert len(frames) == 1
    assert (frames[0].width, frames[0].height) == (width, height)
    return frames[0].to_ndarray(format="gray")


def test_slate_takes_the_lost_inputs_size_and_rate() -> None:
    assert slate_format(_video(1920, 1080, 25.0)) == (1920, 1080, 25.0)
    assert slate_format(_video(318, 178, 29.97)) == (318, 178, 29.97)
    assert slate_format(_video(319, 179, 30.0)) == (318, 178, 30.0)  # yuv420p planes need even sizes


def test_slate_without_any_input_yet_is_720p30_and_absurd_rates_are_bounded() -> None:
    assert slate_format(None) == (1280, 720, 30.0)
    assert slate_format(StreamInfo("video", "unknown", Fraction(1, 90000))) == (1280, 720, 30.0)
    assert slate_format(_video(640, 360, 1000.0))[2] == 60.0
    assert slate_format(_video(640, 360, 0.0))[2] == 30.0


def test_slate_card_decodes_as_raw_video_and_shows_text_on_a_plain_background() -> None:
    card = SlateCard("dock", 320, 180)
    luma = _decode(card.planes(1_700_000_000.0), 320, 180)
    corner = luma[:20, :20]
    assert corner.max() - corner.min() <= 2  # plain background
    middle = luma[40:140, 40:280]
    assert (np.abs(middle.astype(int) - int(corner[0, 0])) > 60).mean() > 0.03  # text drawn there


def test_slate_card_shows_the_feed_name_and_changes_with_each_second() -> None:
    at = 1_700_000_000.0
    a = SlateCard("dock", 320, 180)
    assert a.planes(at) == a.planes(at + 0.9)  # the same second: the same picture
    assert a.planes(at + 1.0) != a.planes(at)  # the clock on the card moves
    assert SlateCard("relay-7", 320, 180).planes(at) != SlateCard("dock", 320, 180).planes(at)


def test_slate_card_fits_a_narrow_picture() -> None:
    luma = _decode(SlateCard("a-long-feed-name", 180, 320).planes(1_700_000_000.0), 180, 320)
    background = int(luma[0, 0])
    ink = np.abs(luma.astype(int) - background) > 60
    assert ink.any()
    assert not ink[:, :2].any() and not ink[:, -2:].any()  # no line runs off either side


class _Collect:
    def __init__(self) -> None:
        self.batches: list[tuple[float, FeedStreams, list[MediaUnit]]] = []

    def __call__(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        self.batches.append((time.time(), streams, units))


def _play(player: SlatePlayer) -> threading.Thread:
    th = threading.Thread(target=player.run, daemon=True)
    th.start()
    return th


def test_slate_waits_its_delay_then_makes_up_the_lost_time_and_runs_at_real_time() -> None:
    sink = _Collect()
    lost, lost_wall = time.monotonic(), time.time()
    player = SlatePlayer("dock", _video(160, 120, 25.0), 7, sink, timeline=lambda: 100.0, lost_at=lost,
                         delay=0.6, batch_seconds=0.2)
    th = _play(player)
    time.sleep(0.4)
    assert not sink.batches  # not before the delay
    time.sleep(1.2)
    player.stop()
    away = time.monotonic() - lost
    th.join(timeout=2)
    assert not th.is_alive()
    assert sink.batches[0][0] - lost_wall < 0.6 + 0.4
    units = [u for _, _, b in sink.batches for u in b]
    # one frame every 1/25 s from where the input stopped, nothing skipped
    assert [u.time for u in units] == [round((100.0 + i / 25) * 90000) / 90000 for i in range(len(units))]
    assert all(u.kind == "video" and len(u.data) == 160 * 120 * 3 // 2 for u in units)
    # as much slate as the input has been away: made up at once, then at real time (less the
    # batch still being filled)
    assert away - 0.3 <= len(units) / 25 <= away + 0.05
    for at, _, batch in sink.batches:
        assert batch[-1].capture <= at + 0.05  # never ahead of the wall clock
    assert player.next_time == round((units[-1].time + 1 / 25) * 90000) / 90000
    assert {s.generation for _, s, _ in sink.batches} == {7}
    assert sink.batches[0][1] == slate_streams(160, 120, 25.0, 7)
    assert sink.batches[0][1].audio is None  # silence: the transcoder's silent track


def test_slate_stopped_before_its_delay_sends_nothing() -> None:
    sink = _Collect()
    player = SlatePlayer("dock", None, 1, sink, timeline=lambda: 0.0, lost_at=time.monotonic(), delay=5.0)
    th = _play(player)
    t = time.monotonic()
    player.stop()
    th.join(timeout=2)
    assert time.monotonic() - t < 0.5 and not sink.batches and player.next_time is None


def test_the_input_after_a_slate_starts_where_the_slate_ended_even_after_a_session_with_nothing(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=0.5, width=64, height=48, fps=25, audio=False)
    src = Source(str(clip), loop=False, realtime=False, start_time=10.0)
    src.open()
    times: list[float] = []
    try:
        for u in src.units():
            times.append(u.time)
    except SourceEnded:
        pass
    src.end_session()
    gen = src.generation
    assert src.new_generation() == gen + 1  # the slate's own: the transcoder rebuilds its decoders
    src.skip_to(20.0)  # the slate ran up to 20 s
    src.open()  # a session that ends before it brings anything
    src.end_session()
    assert src.next_time == 20.0
    src.open()
    assert src.generation == gen + 3
    try:
        first = next(iter(src.units())).time
    finally:
        src.close()
    assert first == 20.0 and 10.0 <= times[-1] < 10.5
