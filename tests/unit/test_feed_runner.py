"""The feed loop: failures with reasons and backoff, recovery, end of source, sink errors, and
every unit read being delivered."""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest

from orbitcast.config import FeedConfig, LadderConfig, Rung
from orbitcast.backoff import Backoff
from orbitcast.media.feed_runner import FeedRunner, SinkError
from orbitcast.media.slate import BACKGROUND
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.media.units import FeedStreams, MediaUnit
from orbitcast.netstat import bound
from orbitcast.segment import Part, Segment
from tests.conftest import reserved_port
from tests.media import make_clip, make_corrupt, rtsp_server_perl, send_test_stream


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("fr") / "clip.mp4", seconds=1.5, width=160, height=120)


class Collector:
    def __init__(self) -> None:
        self.batches: list[tuple[FeedStreams, list[MediaUnit]]] = []
        self.lock = threading.Lock()

    def __call__(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        with self.lock:
            self.batches.append((streams, list(units)))

    @property
    def units(self) -> list[MediaUnit]:
        with self.lock:
            return [u for _, b in self.batches for u in b]


def start(runner: FeedRunner) -> threading.Thread:
    th = threading.Thread(target=runner.run, daemon=True)
    th.start()
    return th


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def tiny_backoff() -> Backoff:
    return Backoff(initial=0.02, factor=2.0, maximum=0.1, jitter=0.0)


def count_units(path: Path) -> int:
    src = Source(str(path), realtime=False, loop=False)
    src.open()
    n = 0
    try:
        for _ in src.units():
            n += 1
    except SourceEnded:
        pass
    src.close()
    return n


def test_missing_file_fails_retries_and_recovers(tmp_path: Path, clip: Path) -> None:
    target = tmp_path / "later.mp4"
    sink = Collector()
    runner = FeedRunner(FeedConfig(name="f", source=str(target), loop=False, realtime=False), sink,
                        backoff=tiny_backoff())
    th = start(runner)
    try:
        wait_for(lambda: runner.health.retries >= 3)
        h = runner.health
        assert h.state == "failed"
        assert h.reason is not None and h.reason.startswith("source not found")
        assert str(target) in h.reason
        assert h.retry_at is not None
        assert runner.backoff.attempt >= 3
        d = h.as_dict()
        assert d["state"] == "failed" and d["retry_in"] is not None and 0 <= d["retry_in"] <= 0.1
        assert not sink.batches

        # the file appears (atomically, as a finished upload would)
        tmp = tmp_path / "upload.tmp"
        shutil.copy(clip, tmp)
        tmp.rename(target)
        wait_for(lambda: runner.health.state in ("live", "ended"))
        th.join(timeout=10)
        assert not th.is_alive()
        assert runner.health.state == "ended"
        assert runner.backoff.attempt == 0  # reset by the success
        assert len(sink.units) == count_units(clip)
    finally:
        runner.stop()
        th.join(timeout=5)


def test_backoff_delays_between_attempts(tmp_path: Path) -> None:
    attempts: list[float] = []
    delays: list[float] = []
    runner = FeedRunner(FeedConfig(name="f", source=str(tmp_path / "nope.mp4"), realtime=False), Collector(),
                        backoff=Backoff(initial=0.05, factor=2.0, maximum=0.2, jitter=0.0))
    original_open = runner.source.open
    original_delay = runner.backoff.next_delay

    def counting_open(*args, **kwargs) -> FeedStreams:  # type: ignore[no-untyped-def]
        attempts.append(time.monotonic())
        return original_open(*args, **kwargs)

    def recording_delay() -> float:
        delays.append(original_delay())
        return delays[-1]

    runner.source.open = counting_open  # type: ignore[method-assign]
    runner.backoff.next_delay = recording_delay  # type: ignore[method-assign]
    th = start(runner)
    wait_for(lambda: len(attempts) >= 5)
    runner.stop()
    th.join(timeout=5)
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]  # grows, then caps
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    for gap, delay in zip(gaps, delays):
        assert gap >= delay - 0.005, (gaps, delays)  # the runner waits the delay before retrying
    assert runner.health.state == "stopped"
    assert runner.health.retries == len(delays)


def test_corrupt_file_fails_with_reason(tmp_path: Path) -> None:
    bad = make_corrupt(tmp_path / "bad.mp4", size=20_000)
    runner = FeedRunner(FeedConfig(name="f", source=str(bad), realtime=False), Collector(), backoff=tiny_backoff())
    th = start(runner)
    try:
        wait_for(lambda: runner.health.retries >= 1)
        assert runner.health.state == "failed"
        assert "invalid data" in (runner.health.reason or "")
    finally:
        runner.stop()
        th.join(timeout=5)
    assert runner.health.state == "stopped"


def test_non_looping_file_ends_and_every_unit_is_delivered(clip: Path) -> None:
    sink = Collector()
    runner = FeedRunner(FeedConfig(name="f", source=str(clip), loop=False, realtime=False), sink,
                        batch_seconds=0.2, backoff=tiny_backoff())
    runner.run()  # returns by itself at the end of the file
    assert runner.health.state == "ended"
    assert runner.health.reason == "end of source"
    units = sink.units
    assert len(units) == count_units(clip)
    video = [u for u in units if u.kind == "video"]
    assert len(video) == 45
    # a batch is cut once it spans batch_seconds; the last (partial) one still arrives
    assert len(sink.batches) >= 5
    for _, batch in sink.batches[:-1]:
        assert batch[-1].time - batch[0].time >= 0.2
    last = sink.batches[-1][1]
    assert last[-1].time - last[0].time < 0.2
    assert runner.health.media_time == units[-1].time
    assert all(s.generation == 1 for s, _ in sink.batches)


def test_looping_file_continues_with_new_generations(clip: Path) -> None:
    sink = Collector()
    runner = FeedRunner(FeedConfig(name="f", source=str(clip), loop=True, realtime=False), sink,
                        backoff=tiny_backoff())
    th = start(runner)
    try:
        wait_for(lambda: sum(1 for u in sink.units if u.kind == "video") >= 3 * 45)
        assert runner.health.state == "live"
    finally:
        runner.stop()
        th.join(timeout=5)
    assert runner.health.state == "stopped"
    gens = [s.generation for s, _ in sink.batches]
    assert gens == sorted(gens) and gens[-1] >= 3
    video = [u.time for u in sink.units if u.kind == "video"]
    assert video == sorted(video)
    n = 3 * 45
    # The timeline begins at the wall clock when the feed starts and goes on across loops.
    origin = runner.health.timeline_start
    assert abs(origin - time.time()) < 60
    assert [t - origin for t in video[:n]] == pytest.approx([i / 30 for i in range(n)], abs=2 / 90000)


def test_sink_error_marks_the_feed_failed(clip: Path) -> None:
    calls = []

    def refusing(streams: FeedStreams, units: list[MediaUnit]) -> None:
        calls.append(len(units))
        raise SinkError("video at 0.000s: cannot decode")

    runner = FeedRunner(FeedConfig(name="f", source=str(clip), loop=False, realtime=False), refusing,
                        backoff=tiny_backoff())
    th = start(runner)
    try:
        wait_for(lambda: runner.health.retries >= 2)
        assert runner.health.state == "failed"
        assert runner.health.reason == "video at 0.000s: cannot decode"
    finally:
        runner.stop()
        th.join(timeout=5)
    assert len(calls) >= 2


def test_an_unexpected_error_from_the_next_stage_is_shown_and_tried_again(clip: Path) -> None:
    # e.g. a Ray error from the transcoder pool that is neither a refusal nor a dead member
    calls = []

    def flaky(streams: FeedStreams, units: list[MediaUnit]) -> None:
        calls.append(len(units))
        if len(calls) <= 2:
            raise ConnectionResetError("the pool's node went away")

    # long enough a wait in `failed` for the test to see it on a loaded machine
    runner = FeedRunner(FeedConfig(name="f", source=str(clip), loop=True, realtime=False), flaky,
                        backoff=Backoff(initial=0.5, factor=1.0, maximum=0.5, jitter=0.0))
    th = start(runner)
    try:
        wait_for(lambda: runner.health.state == "failed")
        assert runner.health.reason == "unexpected ConnectionResetError: the pool's node went away"
        wait_for(lambda: runner.health.state == "live" and len(calls) > 3)
        assert th.is_alive()
    finally:
        runner.stop()
        th.join(timeout=5)


def test_stop_while_live(clip: Path) -> None:
    sink = Collector()
    runner = FeedRunner(FeedConfig(name="f", source=str(clip), loop=True, realtime=True), sink)
    th = start(runner)
    wait_for(lambda: runner.health.state == "live")
    runner.stop()
    th.join(timeout=5)
    assert not th.is_alive()
    assert runner.health.state == "stopped"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_feed_keeps_retrying_after_many_failures(tmp_path: Path) -> None:
    runner = FeedRunner(FeedConfig(name="f", source=str(tmp_path / "nope.mp4"), realtime=False), Collector(),
                        backoff=Backoff(initial=0.001, factor=2.0, maximum=0.005, jitter=0.0, attempt=1020))
    th = start(runner)
    try:
        wait_for(lambda: runner.health.retries >= 10 or not th.is_alive(), timeout=5)
        assert th.is_alive(), "the feed loop died"
        assert runner.health.retries >= 10
    finally:
        runner.stop()
        th.join(timeout=5)


def test_a_network_input_that_ends_is_opened_again_and_its_timeline_goes_on() -> None:
    port = reserved_port()
    sink = Collector()
    # Without a slate: the timeline of the input's own sessions (the slate's tests are below).
    feed = FeedConfig(name="relay", source=f"tcp://127.0.0.1:{port}?listen=1", realtime=False, slate_after=None)
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=tiny_backoff())
    th = start(runner)
    try:
        first = _contribute(CONTRIBUTIONS["tcp"], port, 1.0)
        assert first.returncode == 0, first.stderr.read() if first.stderr else ""
        wait_for(lambda: runner.health.reconnects >= 1, timeout=20)
        # the sender left: not the end of the feed; /api/feeds still names who sent
        assert runner.health.state in ("reconnecting", "starting", "failed") and th.is_alive()
        assert runner.status()["input"]["remote_address"].startswith("127.0.0.1:"), runner.status()["input"]
        before = [u.time for u in sink.units if u.kind == "video"]
        second = _contribute(CONTRIBUTIONS["tcp"], port, 1.0)
        assert second.returncode == 0
        wait_for(lambda: runner.health.reconnects >= 2, timeout=20)
        after = [u.time for u in sink.units if u.kind == "video"][len(before):]
        assert len(before) >= 20 and len(after) >= 20
        # one timeline: the second session's pictures come after the first's, never on top of them
        assert after[0] > before[-1] and after == sorted(after)
        assert {s.generation for s, _ in sink.batches} == {1, 2}
    finally:
        runner.stop()
        th.join(timeout=15)


@pytest.mark.parametrize("protocol", ["tcp", "udp"])  # a UDP input listens too: it binds its port
def test_a_listener_that_no_sender_reached_waits_without_failing_and_takes_one_when_it_comes(protocol: str) -> None:
    port = reserved_port()
    sink = Collector()
    feed = FeedConfig(name="drop", source=CONTRIBUTIONS[protocol].source(port), realtime=False, slate_after=None)
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=tiny_backoff(), open_timeout=1.0)
    th = start(runner)
    try:
        wait_for(lambda: runner.health.state == "waiting", timeout=20)
        assert f"listener on 127.0.0.1:{port}" in (runner.health.reason or "")
        time.sleep(2.5)  # a few open timeouts pass: still waiting, never failed
        assert runner.health.state == "waiting" and runner.health.retries == 0
        sender = _contribute(CONTRIBUTIONS[protocol], port, 1.0)
        assert sender.returncode == 0
        # the sender is done writing before the runner has decoded what it sent (CI's busy cores)
        wait_for(lambda: any(u.kind == "video" for u in sink.units), timeout=20)
    finally:
        runner.stop()
        th.join(timeout=15)


def test_an_rtmp_publisher_that_leaves_while_the_feed_is_behind_is_a_reconnect_not_a_failure() -> None:
    """The next stage takes the feed's media slower than real time (busy cores): the publisher
    has sent everything and closed while its data still waits in our socket. FFmpeg's listener
    then fails to acknowledge (EPIPE) after reading the rest: the end of that session."""
    port = reserved_port()

    def slow(streams: FeedStreams, units: list[MediaUnit]) -> None:
        time.sleep(0.2)  # a batch of 0.05 s of media takes 0.2 s

    feed = FeedConfig(name="cam", source=CONTRIBUTIONS["rtmp"].source(port), options={"listen": "1"}, slate_after=None)
    runner = FeedRunner(feed, slow, batch_seconds=0.05, backoff=tiny_backoff(), open_timeout=3.0)
    th = start(runner)
    try:
        wait_for(lambda: bound(port, "tcp"))
        # 640x360 at 1.3 Mbit/s: more than the sockets hold, so the sender waits on us, then closes
        sender = send_test_stream(CONTRIBUTIONS["rtmp"].target(port), "flv", 10.0)
        assert sender.wait(timeout=60) == 0, sender.stderr.read() if sender.stderr else ""
        wait_for(lambda: runner.health.reconnects >= 1 or runner.health.retries >= 1, timeout=60)
        assert runner.health.reconnects == 1 and runner.health.retries == 0, runner.health.as_dict()
    finally:
        runner.stop()
        th.join(timeout=15)


# -- the slate while a network input is lost ------------------------------------------------------
class ArrivalCollector(Collector):
    """A Collector that also notes when each batch arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def __call__(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        with self.lock:
            self.arrivals.append(time.time())
        super().__call__(streams, units)


def is_slate(streams: FeedStreams) -> bool:
    return streams.video.codec == "rawvideo"


def runs_of(sink: Collector | Transcoding) -> list[tuple[bool, int, list[MediaUnit]]]:
    """(slate?, generation, units) of each run of batches, in the order they were handed on,
    from the first live one (the slate may go out before the first sender connects)."""
    runs: list[tuple[bool, int, list[MediaUnit]]] = []
    for streams, units in sink.batches:
        if not runs and is_slate(streams):
            continue
        if not runs or runs[-1][1] != streams.generation:
            runs.append((is_slate(streams), streams.generation, []))
        runs[-1][2].extend(units)
    return runs


SLATE_AFTER = 0.5


@dataclass(frozen=True)
class Contribution:
    """A protocol a contribution encoder sends over: the feed's source URL and what Debian's
    ffmpeg sends to (URL, muxer and its options) for a given port. `quiet`: the sender only
    stops sending (UDP, RTP), so the feed learns of the loss from the silence, not from a closed
    connection. `pulled`: the feed pulls from a server the encoder publishes to (RTSP, through
    rtsp-server-perl), which has nothing to give while the encoder is away."""

    source: Callable[[int], str]
    target: Callable[[int], str]
    muxer: str
    bound_as: str
    quiet: bool = False
    options: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    pulled: bool = False


CONTRIBUTIONS = {
    "tcp": Contribution(lambda p: f"tcp://127.0.0.1:{p}?listen=1", lambda p: f"tcp://127.0.0.1:{p}", "mpegts", "tcp"),
    "rtmp": Contribution(lambda p: f"rtmp://127.0.0.1:{p}/live/key", lambda p: f"rtmp://127.0.0.1:{p}/live/key",
                         "flv", "tcp", options={"listen": "1"}),
    "srt": Contribution(lambda p: f"srt://127.0.0.1:{p}?mode=listener", lambda p: f"srt://127.0.0.1:{p}?mode=caller",
                        "mpegts", "udp"),
    "udp": Contribution(lambda p: f"udp://127.0.0.1:{p}", lambda p: f"udp://127.0.0.1:{p}?pkt_size=1316", "mpegts",
                        "udp", quiet=True),
    "rtsp": Contribution(lambda p: f"rtsp://127.0.0.1:{p}/live", lambda p: f"rtsp://127.0.0.1:{p}/live", "rtsp",
                         "tcp", quiet=True, options={"rtsp_transport": "udp"}, extra=("-rtsp_transport", "udp"),
                         pulled=True),
}


@contextmanager
def endpoints(how: Contribution, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(the port the feed's source names, the port the encoder sends to)."""
    if how.pulled:
        with rtsp_server_perl(tmp_path / "rtsp-server.log") as ports:
            yield ports
    else:
        port = reserved_port()
        yield port, port


def _contribute(how: Contribution, port: int, seconds: float, timeout: float = 30.0) -> subprocess.Popen:
    """Debian's ffmpeg sends `seconds` of test picture and tone once the feed listens, started
    again (as encoders are) while it finds nobody there; returns it when it is done."""
    deadline = time.monotonic() + timeout
    while True:
        wait_for(lambda: bound(port, how.bound_as), timeout=max(0.1, deadline - time.monotonic()))
        sender = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", *how.extra,
             "-f", how.muxer, how.target(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        if sender.wait() == 0 or time.monotonic() > deadline:
            return sender
        time.sleep(0.1)  # the listener was between two opens


def lose_and_regain_input(sink: Collector | Transcoding, protocol: str, tmp_path: Path) -> tuple[FeedRunner, float, dict, dict]:
    """A feed listens (or pulls); a sender streams 3 s and leaves; once the slate has run ~1 s,
    another comes for 3 s; then the feed is stopped. Returns the feed's runner, when the first
    sender finished, and the feed's health (/api/feeds) during the slate and once the input is
    back."""
    with endpoints(CONTRIBUTIONS[protocol], tmp_path) as (feed_port, sender_port):
        return _lose_and_regain(sink, CONTRIBUTIONS[protocol], feed_port, sender_port)


def _lose_and_regain(sink: Collector | Transcoding, how: Contribution, feed_port: int,
                     port: int) -> tuple[FeedRunner, float, dict, dict]:
    feed = FeedConfig(name="relay", source=how.source(feed_port), options=how.options, slate_after=SLATE_AFTER)
    # the open timeout also bounds how long a UDP open may read before it knows the streams
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=tiny_backoff(), open_timeout=3.0)
    th = start(runner)
    senders: list[subprocess.Popen] = []
    try:
        senders.append(_contribute(how, port, 3.0))
        assert senders[0].returncode == 0, senders[0].stderr.read() if senders[0].stderr else ""
        gone = time.time()
        wait_for(lambda: runner.health.slate, timeout=SLATE_AFTER + 5)
        time.sleep(1.0)
        during = runner.health.as_dict()
        second = threading.Thread(target=lambda: senders.append(_contribute(how, port, 3.0)))
        second.start()
        wait_for(lambda: [r[0] for r in runs_of(sink)][:3] == [False, True, False] and runner.health.state == "live",
                 timeout=15)
        back = runner.health.as_dict()
        second.join(timeout=30)
        assert senders[1].returncode == 0
    finally:
        runner.stop()
        th.join(timeout=15)
    assert not th.is_alive()
    return runner, gone, during, back


@pytest.mark.parametrize("protocol", list(CONTRIBUTIONS))
def test_a_lost_network_input_is_covered_by_a_slate_on_the_same_timeline_until_it_returns(protocol: str,
                                                                                          tmp_path: Path) -> None:
    sink = ArrivalCollector()
    runner, gone, during, back = lose_and_regain_input(sink, protocol, tmp_path)

    runs = runs_of(sink)
    # live, slate, live (then the slate again if the second sender's end was seen before the
    # stop, and on a loaded machine a sender that stalls past `slate_after` is covered as well:
    # slate and input take turns); every change a new generation, so the transcoder rebuilds
    # its decoders
    kinds = [r[0] for r in runs]
    assert kinds[:3] == [False, True, False] and all(a != b for a, b in zip(kinds, kinds[1:])), kinds
    assert [r[1] for r in runs] == sorted(set(r[1] for r in runs))
    before, slate = runs[0][2], runs[1][2]
    after = [u for is_slate, _, units in runs[2:] if not is_slate for u in units]
    first_slate = next(i for i, (s, _) in enumerate(sink.batches) if s.generation == runs[1][1])
    # on time also where the sender only goes quiet: the silence ends the session after
    # `slate_after`, not after the 5 s a quiet input is otherwise given
    assert sink.arrivals[first_slate] - gone < SLATE_AFTER + 1.5
    # a pulled source whose server has nothing to give (RTSP 404) fails, and is tried again
    away = ("reconnecting", "waiting", "failed") if CONTRIBUTIONS[protocol].pulled else ("reconnecting", "waiting")
    assert during["slate"] is True and during["state"] in away, during
    assert isinstance(during["slate_since"], float) and during["slate_since"] >= gone - 0.5
    assert back["slate"] is False and back["slate_since"] is None

    for kind in ("video", "audio"):
        times = [u.time for u in sink.units if u.kind == kind]
        assert times == sorted(times), f"{kind} went back in time"
    video = [u.time for u in sink.units if u.kind == "video"]
    assert len(set(video)) == len(video)  # no picture on top of another
    # the slate's pictures continue where the input's stopped, the returning input's where the
    # slate's stopped (its sound is the transcoder's silence; an input's sound may end a little
    # after its pictures, and comes back after them)
    def pictures(units: list[MediaUnit]) -> list[float]:
        return [u.time for u in units if u.kind == "video"]
    assert max(pictures(before)) < min(pictures(slate)) and max(pictures(slate)) < min(pictures(after))
    assert not any(u.kind == "audio" for u in slate)
    assert max(u.time for u in before if u.kind == "audio") < min(u.time for u in after if u.kind == "audio")
    assert slate[-1].time - slate[0].time >= 1.0  # it ran while the input was away
    assert sum(1 for u in after if u.kind == "video") >= 25 and any(u.kind == "audio" for u in after)
    if CONTRIBUTIONS[protocol].quiet and not CONTRIBUTIONS[protocol].pulled:
        assert during["reason"] and "no data" in during["reason"], during
    assert runner.health.media_time == sink.units[-1].time


def test_a_feed_whose_sender_never_came_shows_a_720p_slate_and_stops_at_once() -> None:
    port = reserved_port()
    sink = ArrivalCollector()
    feed = FeedConfig(name="relay", source=f"tcp://127.0.0.1:{port}?listen=1", slate_after=0.3)
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=tiny_backoff(), open_timeout=2.0)
    th = start(runner)
    wait_for(lambda: len(sink.batches) >= 3, timeout=5)
    assert runner.health.state in ("starting", "waiting") and runner.health.slate
    streams = sink.batches[0][0]
    assert is_slate(streams) and (streams.video.width, streams.video.height, streams.video.fps) == (1280, 720, 30.0)
    origin = runner.health.timeline_start
    video = [u.time - origin for u in sink.units]
    # the timeline begins with the slate, one picture every 1/30 s
    assert video == pytest.approx([i / 30 for i in range(len(video))], abs=2 / 90000)
    runner.stop()
    stopped = time.time()
    time.sleep(0.6)  # a slate still running would hand on a batch every 0.2 s
    assert sink.arrivals[-1] < stopped + 0.1  # the slate stopped with the feed
    th.join(timeout=3)  # the loop leaves the listener within its open timeout
    assert not th.is_alive()
    assert runner.health.state == "stopped" and not runner.health.slate


def test_a_slate_the_next_stage_refuses_is_tried_again_and_the_feed_keeps_listening() -> None:
    port = reserved_port()
    refused: list[int] = []

    def refusing(streams: FeedStreams, units: list[MediaUnit]) -> None:
        refused.append(streams.generation)
        raise SinkError("the transcoder is gone")

    feed = FeedConfig(name="relay", source=f"tcp://127.0.0.1:{port}?listen=1", slate_after=0.1)
    runner = FeedRunner(feed, refusing, backoff=tiny_backoff(), open_timeout=0.5)
    th = start(runner)
    try:
        wait_for(lambda: len(set(refused)) >= 2, timeout=10)  # a new slate after the next open timeout
        assert th.is_alive() and runner.health.state == "waiting"
    finally:
        runner.stop()
        th.join(timeout=5)


def test_a_file_that_fails_gets_no_slate(tmp_path: Path) -> None:
    sink = Collector()
    feed = FeedConfig(name="f", source=str(tmp_path / "missing.mp4"), realtime=False, slate_after=0.1)
    runner = FeedRunner(feed, sink, backoff=tiny_backoff())
    th = start(runner)
    try:
        wait_for(lambda: runner.health.retries >= 3)
        time.sleep(0.4)
        assert runner.health.state == "failed" and not runner.health.slate and not sink.batches
    finally:
        runner.stop()
        th.join(timeout=5)


class Transcoding:
    """A sink that transcodes in this process, as a pool member does (actors/transcoder.py)."""

    def __init__(self) -> None:
        self.ladder = LadderConfig(rungs=(Rung(name="lo", width=160, height=120, video_bitrate=150_000),
                                          Rung(name="min", width=96, height=72, video_bitrate=60_000)),
                                   preset="ultrafast")
        self.transcoder: LiveTranscoder | None = None
        self.segments: list[Segment] = []
        self.batches: list[tuple[FeedStreams, list[MediaUnit]]] = []

    def __call__(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        self.batches.append((streams, units))
        if self.transcoder is None:
            self.transcoder = LiveTranscoder("relay", self.ladder, 1.0, 0.5, streams)
        elif self.transcoder.streams.generation != streams.generation:
            self.transcoder.change_input(streams)
        self.segments += [s for s in self.transcoder.push(units) if isinstance(s, Segment)]


def _probe_frames(path: Path) -> dict[str, int]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames",
         "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=True,
    )
    return {s["codec_type"]: int(s["nb_read_frames"]) for s in json.loads(probe.stdout)["streams"]}


def _corner_luma(path: Path, at: float) -> float:
    """Mean luma of the top-left corner of the picture shown at media time `at`."""
    with av.open(str(path)) as f:
        for frame in f.decode(video=0):
            if frame.time is not None and frame.time >= at:
                return float(frame.to_ndarray(format="gray")[:12, :12].mean())
    raise AssertionError(f"no picture at {at}")


@pytest.mark.parametrize("protocol", list(CONTRIBUTIONS))
def test_segments_across_input_slate_and_input_decode_and_seqs_never_repeat_or_skip(protocol: str, tmp_path: Path) -> None:
    sink = Transcoding()
    lose_and_regain_input(sink, protocol, tmp_path)
    assert sink.transcoder is not None
    sink.segments += [s for s in sink.transcoder.flush() if isinstance(s, Segment)]
    rung_seqs = {}
    for rung in sink.ladder.rungs:
        init = sink.transcoder.init_segments[rung.name]
        segments = [s for s in sink.segments if s.rendition == rung.name]
        seqs = rung_seqs[rung.name] = [s.seq for s in segments]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs  # one after another: no gap, no repeat
        for seg in segments:
            path = tmp_path / f"{rung.name}-{seg.seq}.mp4"
            path.write_bytes(init + seg.data)
            frames = _probe_frames(path)
            assert frames.get("video", 0) > 0 and frames.get("audio", 0) > 0, (rung.name, seg.seq, frames)
        whole = tmp_path / f"{rung.name}.mp4"
        whole.write_bytes(init + b"".join(s.data for s in segments))
        assert _probe_frames(whole)["video"] >= 25 * 6  # 3 s + the slate + 3 s of pictures
    assert rung_seqs["lo"] == rung_seqs["min"]  # every rung, every seq
    whole = tmp_path / "lo.mp4"
    # what a viewer sees in the middle of the outage: the card, not the last live picture; then
    # the live picture again
    _, slate, after = (r[2] for r in runs_of(sink)[:3])
    card_luma = 0.299 * BACKGROUND[0] + 0.587 * BACKGROUND[1] + 0.114 * BACKGROUND[2]  # as "gray" reads it
    assert abs(_corner_luma(whole, slate[len(slate) // 2].time) - card_luma) < 10
    assert abs(_corner_luma(whole, after[0].time + 0.5) - card_luma) > 10


def test_a_garbage_udp_stream_fails_alone_with_its_reason_beside_a_feed_that_plays() -> None:
    good_port, bad_port = reserved_port(), reserved_port()
    good_sink, bad_sink = Collector(), Collector()
    runners = [FeedRunner(FeedConfig(name=name, source=f"udp://127.0.0.1:{port}", slate_after=None), sink,
                          batch_seconds=0.2, backoff=tiny_backoff(), open_timeout=3.0)
               for name, port, sink in (("good", good_port, good_sink), ("bad", bad_port, bad_sink))]
    good, bad = runners
    threads = [start(r) for r in runners]
    quiet = threading.Event()

    def noise() -> None:  # datagrams of random bytes, at about the rate of a small feed
        rnd = random.Random(7)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not quiet.is_set():
                s.sendto(rnd.randbytes(1316), ("127.0.0.1", bad_port))
                time.sleep(0.005)

    threading.Thread(target=noise, daemon=True).start()
    try:
        sender = _contribute(CONTRIBUTIONS["udp"], good_port, 3.0)
        assert sender.returncode == 0, sender.stderr.read() if sender.stderr else ""
        wait_for(lambda: bad.health.retries >= 2, timeout=20)
        # the garbage is refused with a reason a person reads, and nothing of it went on
        assert bad.health.state == "failed" and bad.health.reason, bad.health.as_dict()
        assert "Traceback" not in bad.health.reason and not bad_sink.batches
        # ...while the feed beside it played all along
        video = [u.time for u in good_sink.units if u.kind == "video"]
        assert len(video) >= 50 and video == sorted(video)
        assert good.status()["input"]["video"]["codec"] == "h264"
    finally:
        quiet.set()
        for runner in runners:
            runner.stop()
        for th in threads:
            th.join(timeout=15)
    assert not any(th.is_alive() for th in threads)


def test_the_feed_status_says_what_its_input_is(clip: Path) -> None:
    runner = FeedRunner(FeedConfig(name="f", source=str(clip), loop=False, realtime=False), Collector(),
                        batch_seconds=0.2, backoff=tiny_backoff())
    runner.run()
    status = runner.status()
    assert status["state"] == "ended" and status["input"]["protocol"] == "file"
    assert status["input"]["video"]["codec"] == "h264" and (status["input"]["video"]["width"], status["input"]["video"]["height"]) == (160, 120)
    assert status["input"]["audio"]["codec"] == "aac" and status["input"]["bitrate_bps"] > 0
    assert status["input"]["last_media_at"] is not None


def test_a_runner_that_takes_over_goes_on_where_the_transcoder_stands(clip: Path) -> None:
    """A feed's actor restarted by Ray: the new runner's media starts where the transcoder's
    ended, as a new input, however long the restart took; the seqs go on without a hole."""
    sink = Transcoding()
    feed = FeedConfig(name="f", source=str(clip), loop=False, realtime=False)
    FeedRunner(feed, sink, backoff=tiny_backoff()).run()
    assert sink.transcoder is not None
    resume = sink.transcoder.resume_point
    assert resume is not None
    last_video = max(u.time for _, b in sink.batches for u in b if u.kind == "video")
    assert resume == (pytest.approx(last_video + 1 / 30), 1)
    before = len(sink.batches)
    time.sleep(1.2)  # longer than a segment: a start at the wall clock would skip a seq
    FeedRunner(feed, sink, backoff=tiny_backoff(), resume=resume).run()
    taken = sink.batches[before:]
    assert {s.generation for s, _ in taken} == {2}  # a new input to the transcoder: fresh decoders
    first = min(u.time for _, b in taken for u in b if u.kind == "video")
    assert first == pytest.approx(resume[0], abs=1 / 90000)
    sink.segments += [s for s in sink.transcoder.flush() if isinstance(s, Segment)]
    seqs = [s.seq for s in sink.segments if s.rendition == "lo"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) >= 3, seqs


def test_a_transcoder_that_takes_a_feed_over_sends_the_seqs_it_makes_again_whole_only(clip: Path) -> None:
    """A member that takes a feed over makes again the seqs since the last one finished: the
    dead member's parts of them may be listed, and parts of two encoders in one segment do not
    decode, so those seqs go out whole only (`parts_from_seq`); the seqs after keep their parts."""
    sink = Transcoding()
    feed = FeedConfig(name="f", source=str(clip), loop=False, realtime=False)
    out: list = []

    def taking_over(streams: FeedStreams, units: list[MediaUnit]) -> None:
        if sink.transcoder is None:
            first = int(units[0].time // 1.0)
            sink.transcoder = LiveTranscoder("relay", sink.ladder, 1.0, 0.5, streams, parts_from_seq=first + 1)
        out.extend(sink.transcoder.push(units))

    FeedRunner(feed, taking_over, backoff=tiny_backoff()).run()
    assert sink.transcoder is not None
    out.extend(sink.transcoder.flush())
    first = min(x.seq for x in out)
    assert {x.rendition for x in out if isinstance(x, Segment) and x.seq == first} == {"lo", "min"}
    assert not [x for x in out if isinstance(x, Part) and x.seq == first]
    assert [x for x in out if isinstance(x, Part) and x.seq == first + 1]  # later seqs keep their parts
