"""The feed loop: failures with reasons and backoff, recovery, end of source, sink errors, and
every unit read being delivered."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orbitcast.config import FeedConfig
from orbitcast.backoff import Backoff
from orbitcast.media.feed_runner import FeedRunner, SinkError
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.units import FeedStreams, MediaUnit
from tests.conftest import reserved_port
from tests.media import make_clip, make_corrupt


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

    def counting_open() -> FeedStreams:
        attempts.append(time.monotonic())
        return original_open()

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


def _send_mpegts_over_tcp(port: int, seconds: float) -> subprocess.Popen:
    """Debian's ffmpeg as a contribution encoder: a test pattern, MPEG-TS, to our TCP listener."""
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"testsrc2=size=160x120:rate=25:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "25", "-f", "mpegts", f"tcp://127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _connect_when_listening(port: int, seconds: float, timeout: float = 20.0) -> subprocess.Popen:
    deadline = time.monotonic() + timeout
    while True:
        sender = _send_mpegts_over_tcp(port, seconds)
        if sender.wait() == 0 or time.monotonic() > deadline:
            return sender
        time.sleep(0.1)  # not listening yet (the runner opens it again after a backoff)


def test_a_network_input_that_ends_is_opened_again_and_its_timeline_goes_on() -> None:
    port = reserved_port()
    sink = Collector()
    feed = FeedConfig(name="relay", source=f"tcp://127.0.0.1:{port}?listen=1", realtime=False)
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=tiny_backoff())
    th = start(runner)
    try:
        first = _connect_when_listening(port, 1.0)
        assert first.returncode == 0, first.stderr.read() if first.stderr else ""
        wait_for(lambda: runner.health.reconnects >= 1, timeout=20)
        # the sender left: not the end of the feed
        assert runner.health.state in ("reconnecting", "starting", "failed") and th.is_alive()
        before = [u.time for u in sink.units if u.kind == "video"]
        second = _connect_when_listening(port, 1.0)
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


def test_a_listener_that_no_sender_reached_waits_without_failing_and_takes_one_when_it_comes() -> None:
    port = reserved_port()
    sink = Collector()
    feed = FeedConfig(name="drop", source=f"tcp://127.0.0.1:{port}?listen=1", realtime=False)
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=tiny_backoff(), open_timeout=1.0)
    th = start(runner)
    try:
        wait_for(lambda: runner.health.state == "waiting", timeout=20)
        assert f"listener on 127.0.0.1:{port}" in (runner.health.reason or "")
        time.sleep(2.5)  # a few open timeouts pass: still waiting, never failed
        assert runner.health.state == "waiting" and runner.health.retries == 0
        sender = _connect_when_listening(port, 1.0)
        assert sender.returncode == 0
        assert any(u.kind == "video" for u in sink.units)
    finally:
        runner.stop()
        th.join(timeout=15)
