"""A feed that pulls HLS reads its origin's playlist around each session: a playlist that
reached EXT-X-ENDLIST ends the feed (opened again, it would play once more); a lost origin
is opened again at the first segment not yet played, and not while it lists nothing new."""

from __future__ import annotations

import base64
import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbitcast.backoff import Backoff
from orbitcast.config import FeedConfig
from orbitcast.media.feed_runner import FeedRunner
from orbitcast.media.hls_origin import (
    OriginWatch, fetch_media_playlist, first_variant, is_hls_pull, parse_media_playlist,
)
from orbitcast.media.units import FeedStreams, MediaUnit
from tests.conftest import reserved_port



def media(first: int, count: int, target: int = 1, ended: bool = False) -> str:
    """A media playlist listing segments first..first+count-1, as an origin writes it."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for seq in range(first, first + count):
        lines += [f"#EXTINF:{target}.000000,", f"seg{seq}.ts"]
    return "\n".join(lines + (["#EXT-X-ENDLIST"] if ended else [])) + "\n"


MASTER = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nlow/index.m3u8\n'


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[tuple[Path, int, list[str | None]]]:
    """A static HTTP origin on loopback; the third item collects each request's Authorization."""
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str | None] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            seen.append(self.headers.get("Authorization"))
            super().do_GET()

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, server.server_address[1], seen
    server.shutdown()
    server.server_close()


def test_only_http_playlists_are_hls_pulls() -> None:
    assert is_hls_pull("https://partner.example/live/INDEX.M3U8")
    assert is_hls_pull("http://h/live.m3u8?token=1")
    assert not is_hls_pull("http://h/stream.ts") and not is_hls_pull("/data/live.m3u8")
    assert not is_hls_pull("srt://h:9000?mode=caller")


def test_a_media_playlist_is_read_for_its_numbers_and_end() -> None:
    live = parse_media_playlist(media(40, 5, target=6))
    assert (live.first_seq, live.last_seq, live.count, live.ended) == (40, 44, 5, False)
    # a healthy origin with 6 s segments lists the next within 9 s; FFmpeg reloads every 6 s
    assert live.read_timeout == 18.0
    assert parse_media_playlist(media(0, 3, target=1)).read_timeout == 5.0  # never below the default
    assert parse_media_playlist(media(7, 2, ended=True)).ended
    assert first_variant(MASTER, "http://h/live/master.m3u8") == "http://h/live/low/index.m3u8"
    assert first_variant(media(0, 1), "http://h/live/index.m3u8") is None


def test_the_origin_playlist_is_fetched_through_a_master_and_with_credentials(
        origin: tuple[Path, int, list[str | None]]) -> None:
    root, port, seen = origin
    (root / "low").mkdir()
    (root / "master.m3u8").write_text(MASTER)
    (root / "low" / "index.m3u8").write_text(media(3, 4))
    assert fetch_media_playlist(f"http://127.0.0.1:{port}/master.m3u8") == parse_media_playlist(media(3, 4))
    # credentials in the URL travel as FFmpeg sends them
    seen.clear()
    assert fetch_media_playlist(f"http://cam:s%40cret@127.0.0.1:{port}/low/index.m3u8") is not None
    assert seen == ["Basic " + base64.b64encode(b"cam:s@cret").decode()]
    # an origin that is not there, or not a playlist: the feed opens it as it is and reports
    # what FFmpeg finds
    (root / "page.m3u8").write_text("<html>sign in</html>")
    assert fetch_media_playlist(f"http://127.0.0.1:{port}/page.m3u8") is None
    assert fetch_media_playlist(f"http://127.0.0.1:{port}/missing.m3u8") is None
    assert fetch_media_playlist(f"http://127.0.0.1:{reserved_port()}/live.m3u8", timeout=0.5) is None


def test_a_lost_origin_is_opened_again_at_the_first_segment_not_played(
        origin: tuple[Path, int, list[str | None]]) -> None:
    root, port, _ = origin
    playlist = root / "live.m3u8"
    watch = OriginWatch(f"http://127.0.0.1:{port}/live.m3u8")
    playlist.write_text(media(10, 5, target=2))
    first = watch.next_session()
    assert first.new and first.options == {} and first.read_timeout == 6.0  # FFmpeg's own start
    assert not watch.session_ended()  # lost, not ended: it played up to seg14
    assert not watch.next_session().new  # nothing since: not opened (it would play 12-14 again)
    playlist.write_text(media(12, 5, target=2))  # 15 and 16 came
    assert watch.next_session().options == {"live_start_index": "-2"}
    assert not watch.session_ended()
    playlist.write_text(media(25, 5, target=2))  # 17-24 slid out of the window unplayed
    assert watch.next_session().options == {"live_start_index": "0"}
    assert not watch.session_ended()
    playlist.write_text(media(0, 2, target=2))  # the origin started again, numbering from 0
    assert watch.next_session().options == {}
    playlist.write_text(media(0, 3, target=2, ended=True))
    assert watch.session_ended()


class FeedSink:
    def __init__(self) -> None:
        self.batches: list[tuple[FeedStreams, list[MediaUnit]]] = []

    def __call__(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        self.batches.append((streams, list(units)))

    def pictures(self) -> int:
        """Pictures from the origin (the slate's are raw video)."""
        return sum(1 for s, units in self.batches if s.video.codec != "rawvideo" for u in units if u.kind == "video")


def _pull(port: int, sink: FeedSink, backoff: Backoff) -> tuple[FeedRunner, threading.Thread]:
    """A feed pulling the origin's live.m3u8, running on a thread of its own."""
    feed = FeedConfig(name="partner", source=f"http://127.0.0.1:{port}/live.m3u8", slate_after=0.5)
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=backoff)
    th = threading.Thread(target=runner.run, daemon=True)
    th.start()
    return runner, th


@pytest.mark.skipif(subprocess.run(["which", "ffmpeg"], capture_output=True).returncode != 0, reason="needs ffmpeg")
def test_an_hls_pull_that_reaches_its_end_list_ends_and_is_not_played_again(
        origin: tuple[Path, int, list[str | None]]) -> None:
    root, port, _ = origin
    seconds = 3
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac",
         "-f", "hls", "-hls_time", "1", "-hls_list_size", "0", str(root / "live.m3u8")],
        check=True, timeout=60,
    )
    assert parse_media_playlist((root / "live.m3u8").read_text()).ended
    sink = FeedSink()
    runner, th = _pull(port, sink, Backoff(initial=0.02, factor=2.0, maximum=0.1, jitter=0.0))
    try:
        deadline = time.monotonic() + 30
        while runner.health.state != "ended" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # a feed opened again would play the playlist once more in this time
    finally:
        runner.stop()
        th.join(timeout=10)
    assert runner.health.state in ("ended", "stopped") and "EXT-X-ENDLIST" in (runner.health.reason or "")
    assert seconds * 25 - 5 <= sink.pictures() <= seconds * 25, sink.pictures()  # every picture, once


def _write_hls(root: Path, seconds: int, *flags: str) -> subprocess.Popen:
    """Debian's ffmpeg as a live HLS origin: 1 s segments in real time, no end tag, so that the
    playlist goes stale when it stops, as a crashed packager's does."""
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_flags", "+".join(("omit_endlist", "temp_file") + flags),
         str(root / "live.m3u8")],
    )


@pytest.mark.skipif(subprocess.run(["which", "ffmpeg"], capture_output=True).returncode != 0, reason="needs ffmpeg")
def test_a_stale_origin_is_covered_and_not_replayed_and_plays_on_when_it_lists_again(
        origin: tuple[Path, int, list[str | None]]) -> None:
    root, port, _ = origin
    first = _write_hls(root, 4)
    deadline = time.monotonic() + 30
    while not (root / "live.m3u8").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sink = FeedSink()
    runner, th = _pull(port, sink, Backoff(initial=0.05, factor=2.0, maximum=0.3, jitter=0.0))
    try:
        assert first.wait(timeout=60) == 0
        stale = parse_media_playlist((root / "live.m3u8").read_text())
        # lost once nothing new is listed for the read timeout (5 s here), then the slate
        deadline = time.monotonic() + 15
        while not runner.health.slate and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3.0)  # opened again meanwhile, the playlist's last segments would play twice
        during = runner.health.as_dict()
        pictures_stale = sink.pictures()
        second = _write_hls(root, 3, "append_list")
        assert second.wait(timeout=60) == 0
        resumed = parse_media_playlist((root / "live.m3u8").read_text())
        deadline = time.monotonic() + 15
        while sink.pictures() < pictures_stale + 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
    finally:
        runner.stop()
        th.join(timeout=15)
    assert not th.is_alive()
    assert resumed.first_seq > 0 and resumed.last_seq > stale.last_seq  # the origin numbered on
    assert during["slate"] and during["state"] == "reconnecting", during
    # every picture the origin made, at most once: 4 s, then 3 s, at 25 per second
    assert 3 * 25 <= pictures_stale <= 4 * 25, pictures_stale
    assert pictures_stale + 2 * 25 <= sink.pictures() <= 7 * 25, (pictures_stale, sink.pictures())
