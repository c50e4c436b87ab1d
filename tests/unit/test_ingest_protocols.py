"""Contribution ingest: Debian's ffmpeg sends a test stream (made on the fly) over each protocol
and a `Source` receives it, as a feed does; what arrives is transcoded and checked with ffprobe.
No Ray: the source and the transcoder run in this process."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orbitcast.config import LadderConfig, Rung
from orbitcast.media.relay import redact
from orbitcast.netstat import bound
from orbitcast.media.source import Source, SourceEnded, SourceError
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.media.units import FeedStreams, MediaUnit
from orbitcast.segment import Segment
from tests.conftest import reserved_port
from tests.media import make_clip, rtsp_server_perl

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                       reason="needs Debian's ffmpeg and ffprobe (make test installs them)"),
]

SECONDS = 3.0
PASSPHRASE = "orbit-secret-42"
LADDER = LadderConfig(rungs=(Rung(name="lo", width=160, height=120, video_bitrate=150_000),),
                      audio_bitrate=64_000, preset="ultrafast")


# -- the sender ---------------------------------------------------------------------------------
def send(url: str, fmt: str, seconds: float = SECONDS, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """ffmpeg sending `seconds` of test picture and tone, at real time, H.264 + AAC."""
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "64k", *extra, "-f", fmt, url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class SenderWhenBound:
    """Starts the sender once our side is bound to `port` (a listener must exist before a caller
    connects); the test thread meanwhile blocks in Source.open()."""

    def __init__(self, port: int, proto: str, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = threading.Event()

        def run() -> None:
            try:
                wait_for(lambda: bound(port, proto), what=f"{proto} port {port}")
                self.proc = start()
            finally:
                self.ready.set()

        threading.Thread(target=run, daemon=True).start()

    def finish(self) -> str:
        self.ready.wait(60)
        if self.proc is None:
            return ""
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode(errors="replace")


# -- the receiver --------------------------------------------------------------------------------
@dataclass
class Session:
    streams: FeedStreams
    units: list[MediaUnit]
    end: SourceEnded | SourceError
    relay_pid: int | None
    link: dict | None = None  # what /api/feeds said of the far end while media flowed

    def times(self, kind: str) -> list[float]:
        return [u.time for u in self.units if u.kind == kind]


def receive(src: Source) -> Session:
    """One session of `src`: open, read to its end, close."""
    try:
        streams = src.open()
        units: list[MediaUnit] = []
        link = None
        try:
            for unit in src.units():
                units.append(unit)
                if len(units) == 10:
                    link = src.link()
        except (SourceEnded, SourceError) as end:
            return Session(streams, units, end, src.relay_pid, link)
        raise AssertionError("units() returned without SourceEnded")
    finally:
        src.close()


def assert_plays(session: Session, tmp_path: Path) -> None:
    """What a viewer needs: picture and sound arrive, time moves on, and the ladder's segments made
    from them decode in ffprobe."""
    assert session.streams.video.codec == "h264" and session.streams.audio is not None
    video, audio = session.times("video"), session.times("audio")
    assert len(video) >= 30 and len(audio) >= 30, (len(video), len(audio))
    assert video == sorted(video) and video[-1] - video[0] >= SECONDS / 2
    assert any(u.keyframe for u in session.units if u.kind == "video")
    transcoder = LiveTranscoder("ingest", LADDER, 1.0, 0.5, session.streams)
    out = transcoder.push(session.units) + transcoder.flush()
    segments = sorted((s for s in out if isinstance(s, Segment)), key=lambda s: s.seq)
    assert segments, "no segment cut"
    path = tmp_path / "lo.mp4"
    path.write_bytes(transcoder.init_segments["lo"] + b"".join(s.data for s in segments))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames",
         "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=True,
    )
    frames = {s["codec_type"]: int(s["nb_read_frames"]) for s in json.loads(probe.stdout)["streams"]}
    assert frames.get("video", 0) >= 30 and frames.get("audio", 0) > 0, frames


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # killed; a zombie only waits for its parent to read its status


# -- SRT ------------------------------------------------------------------------------------------
def test_srt_listener_plays_a_caller_with_passphrase_and_latency(tmp_path: Path) -> None:
    port = reserved_port()
    options = f"passphrase={PASSPHRASE}&pbkeylen=16&latency=200000"
    src = Source(f"srt://127.0.0.1:{port}?mode=listener&{options}", open_timeout=30)
    sender = SenderWhenBound(port, "udp", lambda: send(f"srt://127.0.0.1:{port}?mode=caller&{options}", "mpegts"))
    session = receive(src)
    assert sender.finish() == ""
    assert isinstance(session.end, SourceEnded), session.end
    assert_plays(session, tmp_path)
    assert session.relay_pid is not None and process_gone(session.relay_pid), "the relay outlived Source.close()"


def test_srt_caller_plays_from_a_listening_sender(tmp_path: Path) -> None:
    port = reserved_port()
    sender = send(f"srt://127.0.0.1:{port}?mode=listener&latency=120000", "mpegts")
    try:
        wait_for(lambda: bound(port, "udp"), what="the sender's SRT listener")
        session = receive(Source(f"srt://127.0.0.1:{port}?mode=caller&latency=120000", open_timeout=30))
    finally:
        sender.kill() if sender.poll() is None else None
        sender.communicate()
    assert isinstance(session.end, SourceEnded), session.end
    assert_plays(session, tmp_path)


def test_srt_sender_with_a_wrong_passphrase_is_refused_with_a_clear_reason() -> None:
    port = reserved_port()
    src = Source(f"srt://127.0.0.1:{port}?mode=listener&passphrase={PASSPHRASE}", open_timeout=8)
    sender = SenderWhenBound(port, "udp", lambda: send(f"srt://127.0.0.1:{port}?mode=caller&passphrase=not-the-secret", "mpegts"))
    with pytest.raises(SourceError) as err:
        receive(src)
    assert "Incorrect passphrase" in sender.finish()  # the sender saw the refusal too
    reason = str(err.value)
    assert "wrong passphrase" in reason and "no sender connected" in reason
    assert PASSPHRASE not in reason


def test_srt_caller_with_a_wrong_passphrase_reports_the_refusal() -> None:
    port = reserved_port()
    sender = send(f"srt://127.0.0.1:{port}?mode=listener&passphrase={PASSPHRASE}", "mpegts")
    try:
        wait_for(lambda: bound(port, "udp"), what="the sender's SRT listener")
        with pytest.raises(SourceError, match="the listener refused us: wrong passphrase"):
            receive(Source(f"srt://127.0.0.1:{port}?mode=caller&passphrase=not-the-secret", open_timeout=30))
    finally:
        sender.kill()
        sender.communicate()


def test_srt_caller_with_no_listener_says_so() -> None:
    port = reserved_port()
    with pytest.raises(SourceError, match="could not connect to 127.0.0.1"):
        receive(Source(f"srt://127.0.0.1:{port}?mode=caller", open_timeout=30))


def test_srt_relay_dies_with_the_feed_thread_that_started_it() -> None:
    """A feed thread that dies without closing its source leaves no ffmpeg behind."""
    port = reserved_port()
    src = Source(f"srt://127.0.0.1:{port}?mode=listener", open_timeout=30)
    sender = SenderWhenBound(port, "udp", lambda: send(f"srt://127.0.0.1:{port}?mode=caller", "mpegts", seconds=30))
    started: list[int] = []

    def feed_thread() -> None:
        src.open()
        assert src.relay_pid is not None
        started.append(src.relay_pid)
        next(iter(src.units()))
        # the thread ends here without closing the source, as a feed thread that crashed would

    thread = threading.Thread(target=feed_thread)
    thread.start()
    thread.join(60)
    try:
        assert started, "the relay never started"
        assert src._relay is not None
        assert src._relay._proc is not None and src._relay._proc.wait(timeout=10) is not None
    finally:
        sender.finish()  # the sender ends when its receiver is gone
        src.close()


def test_reasons_never_show_passphrases_or_url_passwords() -> None:
    text = redact(f"srt://h:9000?mode=caller&passphrase={PASSPHRASE}&latency=1 and rtsp://cam:hunter2@10.0.0.9/live")
    assert PASSPHRASE not in text and "hunter2" not in text
    assert "srt://h:9000?mode=caller" in text and "rtsp://cam:***@10.0.0.9/live" in text


# -- RTMP, UDP, HLS -----------------------------------------------------------------------------------
def test_rtmp_publish_to_a_listening_source_plays_and_ends_when_the_publisher_leaves(tmp_path: Path) -> None:
    port = reserved_port()
    src = Source(f"rtmp://127.0.0.1:{port}/live/key", options={"listen": "1"}, open_timeout=30)
    sender = SenderWhenBound(port, "tcp", lambda: send(f"rtmp://127.0.0.1:{port}/live/key", "flv"))
    session = receive(src)
    assert sender.finish() == ""
    assert isinstance(session.end, SourceEnded), session.end
    assert_plays(session, tmp_path)
    # the publisher, as the kernel saw its connection: loopback, from a port of its own
    host, _, sender_port = session.link["remote_address"].rpartition(":")
    assert host == "127.0.0.1" and int(sender_port) != port, session.link
    assert src.link() == session.link  # kept once the publisher has gone


@pytest.mark.parametrize("group", [None, "239.255.42.1"], ids=["unicast", "multicast"])
def test_mpegts_over_udp_plays_and_a_silent_sender_is_reported(group: str | None, tmp_path: Path) -> None:
    port = reserved_port()
    host = group or "127.0.0.1"
    query = "?localaddr=127.0.0.1" if group else ""
    src = Source(f"udp://{host}:{port}{query}", open_timeout=30, read_timeout=2)
    target = f"udp://{host}:{port}?pkt_size=1316" + ("&localaddr=127.0.0.1&ttl=1" if group else "")
    sender = SenderWhenBound(port, "udp", lambda: send(target, "mpegts"))
    session = receive(src)
    assert sender.finish() == ""
    assert isinstance(session.end, SourceError) and "no data" in str(session.end)
    assert_plays(session, tmp_path)
    assert session.link == {"remote_address": None}  # FFmpeg keeps who sent the datagrams


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_hls_pull_plays_a_live_playlist_to_its_end(http_dir: tuple[Path, int], tmp_path: Path) -> None:
    root, port = http_dir
    sender = send(str(root / "live.m3u8"), "hls", seconds=4.0,
                  extra=("-hls_time", "1", "-hls_list_size", "0", "-hls_flags", "temp_file"))
    try:
        wait_for(lambda: (root / "live.m3u8").exists(), what="the first HLS playlist")
        session = receive(Source(f"http://user:secret@127.0.0.1:{port}/live.m3u8", open_timeout=30))
    finally:
        sender.communicate(timeout=60)
    assert isinstance(session.end, SourceEnded), session.end
    assert_plays(session, tmp_path)
    assert session.link == {"remote_address": f"127.0.0.1:{port}"}  # the origin called, no credentials


# -- RTSP -------------------------------------------------------------------------------------------
@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """rtsp-server-perl relays RTP over UDP only, so only UDP transport is tested against it."""
    with rtsp_server_perl(tmp_path / "rtsp-server.log") as ports:
        yield ports


def test_rtsp_pull_over_udp_plays_and_a_stopped_sender_is_reported(rtsp_server: tuple[int, int], tmp_path: Path) -> None:
    client_port, source_port = rtsp_server
    sender = send(f"rtsp://127.0.0.1:{source_port}/live", "rtsp", seconds=4.0, extra=("-rtsp_transport", "udp"))
    src = Source(f"rtsp://127.0.0.1:{client_port}/live", options={"rtsp_transport": "udp"}, read_timeout=2)
    try:
        # The stream exists once the sender has announced it; until then the server answers 404.
        deadline = time.monotonic() + 30
        while True:
            try:
                session = receive(src)
                break
            except SourceError:
                if time.monotonic() > deadline or sender.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        sender.communicate(timeout=60)
    # RTP over UDP has no end of stream here: the sender's silence is what the feed sees.
    assert isinstance(session.end, SourceError) and "no data" in str(session.end), session.end
    assert_plays(session, tmp_path)


GST_PYTHON = "/usr/bin/python3"  # Debian's, which has PyGObject and GStreamer's typelibs


def gst_rtsp_available() -> bool:
    check = [GST_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"]
    try:
        return subprocess.run(check, capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


@pytest.fixture
def gst_rtsp_server(tmp_path: Path) -> Iterator[int]:
    """GStreamer's RTSP server (tests/rtsp_gst_server.py) serving a 4 s H.264/AAC clip, over
    interleaved TCP only: the transport rtsp-server-perl cannot relay."""
    if not gst_rtsp_available():
        pytest.skip("needs Debian's gir1.2-gst-rtsp-server-1.0 and python3-gi (make test installs them)")
    clip = make_clip(tmp_path / "rtsp.mp4", seconds=4.0, width=320, height=240, gop=30)
    port = reserved_port()
    server = subprocess.Popen([GST_PYTHON, str(Path(__file__).parents[1] / "rtsp_gst_server.py"), str(port), str(clip)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        assert line.strip() == "ready", line + server.stdout.read().decode()
        yield port
    finally:
        server.kill()
        server.wait()


def test_rtsp_pull_over_tcp_plays(gst_rtsp_server: int, tmp_path: Path) -> None:
    url = f"rtsp://127.0.0.1:{gst_rtsp_server}/live"
    # The server offers interleaved TCP only: asking for UDP is refused, with a reason.
    with pytest.raises(SourceError):
        receive(Source(url, options={"rtsp_transport": "udp"}, open_timeout=10, read_timeout=2))
    session = receive(Source(url, options={"rtsp_transport": "tcp"}, open_timeout=10, read_timeout=2))
    # the clip's end: the server ends the session, or falls silent (no RTSP end of stream in FFmpeg)
    assert isinstance(session.end, SourceEnded) or "no data" in str(session.end), session.end
    assert_plays(session, tmp_path)
