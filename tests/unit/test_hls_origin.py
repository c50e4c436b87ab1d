"""An HLS pull that reaches EXT-X-ENDLIST has ended: the feed does not open it again (it would
play the finished playlist once more); an origin that is only gone is tried again."""

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
from orbitcast.media.hls_origin import first_variant, has_endlist, is_hls_pull, origin_ended
from orbitcast.media.units import FeedStreams, MediaUnit
from tests.conftest import reserved_port

MEDIA = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg0.ts\n"
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


def test_the_end_tag_is_found_and_a_variant_resolved_against_its_master() -> None:
    assert has_endlist(MEDIA + "#EXT-X-ENDLIST\n") and not has_endlist(MEDIA)
    assert first_variant(MASTER, "http://h/live/master.m3u8") == "http://h/live/low/index.m3u8"
    assert first_variant(MEDIA, "http://h/live/index.m3u8") is None


def test_the_origin_says_whether_its_stream_ended(origin: tuple[Path, int, list[str | None]]) -> None:
    root, port, seen = origin
    (root / "low").mkdir()
    (root / "master.m3u8").write_text(MASTER)
    (root / "low" / "index.m3u8").write_text(MEDIA)
    assert not origin_ended(f"http://127.0.0.1:{port}/master.m3u8")  # live: still growing
    (root / "low" / "index.m3u8").write_text(MEDIA + "#EXT-X-ENDLIST\n")
    assert origin_ended(f"http://127.0.0.1:{port}/master.m3u8")
    # credentials in the URL travel as FFmpeg sends them
    seen.clear()
    assert origin_ended(f"http://cam:s%40cret@127.0.0.1:{port}/low/index.m3u8")
    assert seen == ["Basic " + base64.b64encode(b"cam:s@cret").decode()]
    # an origin that is not there, or not a playlist, has not ended: the feed tries it again
    assert not origin_ended(f"http://127.0.0.1:{port}/missing.m3u8")
    assert not origin_ended(f"http://127.0.0.1:{reserved_port()}/live.m3u8", timeout=0.5)


class Collector:
    def __init__(self) -> None:
        self.units: list[MediaUnit] = []

    def __call__(self, streams: FeedStreams, units: list[MediaUnit]) -> None:
        self.units.extend(units)


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
    assert has_endlist((root / "live.m3u8").read_text())
    sink = Collector()
    feed = FeedConfig(name="partner", source=f"http://127.0.0.1:{port}/live.m3u8", slate_after=0.5)
    runner = FeedRunner(feed, sink, batch_seconds=0.2, backoff=Backoff(initial=0.02, factor=2.0, maximum=0.1, jitter=0.0))
    th = threading.Thread(target=runner.run, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 30
        while runner.health.state != "ended" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # a feed opened again would play the playlist once more in this time
    finally:
        runner.stop()
        th.join(timeout=10)
    assert runner.health.state in ("ended", "stopped") and "EXT-X-ENDLIST" in (runner.health.reason or "")
    pictures = sum(1 for u in sink.units if u.kind == "video")
    assert seconds * 25 - 5 <= pictures <= seconds * 25, pictures  # every picture, once
