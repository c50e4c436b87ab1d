"""What a feed knows of its SRT link (`/api/feeds` `input.remote_address` and `input.srt`), with
Debian's ffmpeg as the sender and, for a lossy link, a UDP forwarder between the two that drops
data packets: SRT's own counters must see the loss and the retransmissions, and the stream must
still arrive whole. No Ray."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

from orbitcast.media.source import Source, SourceEnded, SourceError
from orbitcast.media.srt_receiver import parse_srt_url
from orbitcast.metrics.status import feed_families
from orbitcast.netstat import bound
from tests.conftest import reserved_port
from tests.unit.test_ingest_protocols import SenderWhenBound, send, wait_for

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg (make test installs it)"),
]


# -- the URL ---------------------------------------------------------------------------------------
def test_urls_mean_what_they_meant_to_ffmpeg() -> None:
    url = parse_srt_url("srt://0.0.0.0:9000?mode=listener&latency=200000&passphrase=a-long-secret&pbkeylen=24"
                        "&connect_timeout=500&transtype=live&timeout=5000000")
    assert (url.host, url.port, url.listener) == ("0.0.0.0", 9000, True)
    values = {name: value for name, _, value in url.options}
    # ffmpeg's libsrt takes latencies in microseconds; the socket option is in milliseconds
    assert values == {"latency": 200, "passphrase": "a-long-secret", "pbkeylen": 24, "connect_timeout": 500}
    assert parse_srt_url("srt://ground.example:9000").listener is False  # SRT's default mode: caller
    assert parse_srt_url("srt://:9000?mode=listener").host == "0.0.0.0"


@pytest.mark.parametrize("url, says", [
    ("srt://h:9000?mode=rendezvous", "mode 'rendezvous' is not supported"),
    ("srt://h:9000?lossmaxtll=5", "unknown SRT option 'lossmaxtll'"),
    ("srt://h:9000?latency=soon", "latency='soon' is not valid"),
    ("srt://h:9000?transtype=file", "transtype must be live"),
    ("srt://:9000?mode=caller", "needs the host"),
    ("srt://h?mode=caller", "srt://host:port"),
])
def test_a_url_it_cannot_follow_is_refused_by_name(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_srt_url(url)
    with pytest.raises(SourceError, match="^SRT: "):
        Source(url, open_timeout=5).open()


def test_a_taken_port_and_a_short_passphrase_are_named() -> None:
    port = reserved_port()
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", port))
    try:
        with pytest.raises(SourceError, match=f"SRT: port {port} is already in use"):
            Source(f"srt://127.0.0.1:{port}?mode=listener", open_timeout=5).open()
    finally:
        taken.close()
    with pytest.raises(SourceError, match=r"invalid passphrase \(10 to 79 characters\)"):
        Source(f"srt://127.0.0.1:{reserved_port()}?mode=listener&passphrase=short", open_timeout=5).open()


# -- the link ---------------------------------------------------------------------------------------
class LossyLink:
    """A UDP forwarder on `port`: what a caller sends goes on to `to`, the answers come back.
    Every `drop_every`-th SRT data packet from the caller (first bit 0; control packets, the
    handshake among them, have it set) is dropped once the first 100 have passed."""

    def __init__(self, to: int, drop_every: int = 20) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.to = ("127.0.0.1", to)
        self.drop_every = drop_every
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        caller = None
        data = 0
        while not self._stop.is_set():
            try:
                packet, source = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            if source == self.to:
                if caller is not None:
                    self.sock.sendto(packet, caller)
                continue
            caller = source
            if not packet[0] & 0x80:
                data += 1
                if data > 100 and data % self.drop_every == 0:
                    self.dropped += 1
                    continue
            self.sock.sendto(packet, self.to)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def read_all(src: Source, during: list[dict], at_unit: int = 60) -> tuple[list[float], BaseException]:
    """Video times of the session; `during` gets the link as seen at the `at_unit`-th unit."""
    src.open()
    times: list[float] = []
    try:
        for n, unit in enumerate(src.units()):
            if unit.kind == "video":
                times.append(unit.time)
            if n == at_unit:
                during.append(src.link() or {})
    except (SourceEnded, SourceError) as end:
        return times, end
    finally:
        src.end_session()
    raise AssertionError("units() returned without an end")


def test_a_lossy_link_shows_in_the_counters_and_the_stream_still_arrives_whole() -> None:
    port = reserved_port()
    link = LossyLink(to=port)
    src = Source(f"srt://127.0.0.1:{port}?mode=listener&latency=400000", open_timeout=30)
    sender = SenderWhenBound(port, "udp", lambda: send(f"srt://127.0.0.1:{link.port}?mode=caller&latency=400000",
                                                       "mpegts", seconds=4.0))
    during: list[dict] = []
    try:
        times, end = read_all(src, during, at_unit=150)
        assert sender.finish() == ""
    finally:
        link.close()
    assert isinstance(end, SourceEnded), end
    # the pictures come one after another, none missing: the losses were made good by
    # retransmission (the last ~0.4 s, still in SRT's latency buffer when the sender closes,
    # never arrive, loss or none)
    assert len(times) >= 90, len(times)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < 1.5 / 30 and min(gaps) > 0, max(gaps)
    assert link.dropped > 0
    now = during[0]
    # the sender as the listener saw it: the forwarder's address
    assert now["remote_address"] == f"127.0.0.1:{link.port}"
    assert now["srt"]["connected"] is True and now["srt"]["packets_received"] > 100
    assert now["srt"]["latency_ms"] == 400
    after = src.link()
    assert after is not None and after["srt"]["connected"] is False  # kept once the sender has gone
    assert after["remote_address"] == now["remote_address"]
    assert after["srt"]["packets_lost"] > 0 and after["srt"]["packets_retransmitted"] > 0, after
    assert after["srt"]["packets_received"] >= now["srt"]["packets_received"]
    # and /metrics reads the same counters off /api/feeds
    families = feed_families([{"feed": "relay", "state": "reconnecting", "input": after}], time.time())
    lost = families["orbitcast_feed_srt_packets_total"]["samples"][("relay", "lost")]
    assert lost == after["srt"]["packets_lost"]
    assert families["orbitcast_feed_srt_connected"]["samples"][("relay",)] == 0.0


def test_a_caller_knows_the_listener_it_reached() -> None:
    port = reserved_port()
    sender = send(f"srt://127.0.0.1:{port}?mode=listener", "mpegts", seconds=3.0)
    during: list[dict] = []
    try:
        wait_for(lambda: bound(port, "udp"), what="the sender's SRT listener")
        times, end = read_all(Source(f"srt://127.0.0.1:{port}?mode=caller", open_timeout=30), during)
    finally:
        sender.kill() if sender.poll() is None else None
        sender.communicate()
    assert isinstance(end, SourceEnded), end
    assert len(times) >= 60
    assert during[0]["remote_address"] == f"127.0.0.1:{port}"
    assert during[0]["srt"]["connected"] is True and during[0]["srt"]["packets_lost"] == 0


def test_sources_without_a_relay_say_nothing_of_a_link(tmp_path) -> None:
    assert Source("lavfi:testsrc2=size=64x48:rate=5", open_timeout=5).link() is None
