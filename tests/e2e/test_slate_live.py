"""A contribution feed that never goes dark, on a pipeline of its own (`own_cluster`): Debian's
ffmpeg sends SRT to the feed's listener, stops, and comes back. While it is away the "signal
lost" slate goes out after `slate_after` on the same timeline (silence in every rung, playlists
advancing, no end), a player reading the playlist (ffmpeg's HLS reader) goes on across both
switches, and when the sender returns its picture and tone do too, with no seq made twice.

A pipeline of its own because the slate transcodes a card for as long as the input is away:
the shared pipeline's contribution feed is idle most of the run, and CI's two cores cannot
afford a slate there (tests/conftest.py). Here a two-rung ladder on ultrafast keeps it cheap."""

from __future__ import annotations

import re
import subprocess
import time

import m3u8
import pytest
import requests

from tests.conftest import reserved_port
from tests.media import send_srt
from tests.small_pipeline import BOTTOM, TOP, small_config
from tests.waiting import wait_for

pytestmark = [pytest.mark.own_cluster, pytest.mark.e2e]

FEED = "relay"
SLATE_AFTER = 1.0
PASSPHRASE = "slate-test-passphrase"


class Relay:
    def __init__(self, pipeline, port: int) -> None:
        self.pipeline = pipeline
        self.base = pipeline.url.rstrip("/")
        self.port = port

    def feed(self) -> dict | None:
        feeds = requests.get(f"{self.base}/api/feeds", timeout=15).json()["feeds"]
        return next((f for f in feeds if f["feed"] == FEED and "input" in f), None)

    def playlist(self, rung: str) -> m3u8.M3U8 | None:
        r = requests.get(f"{self.base}/live/{FEED}/{rung}/index.m3u8", timeout=15)
        return m3u8.loads(r.text) if r.status_code == 200 else None

    def seqs(self, rung: str) -> list[int]:
        """The whole segments the rung's playlist lists, oldest first."""
        pl = self.playlist(rung)
        return [int(s.uri.split(".")[0]) for s in pl.segments if s.uri] if pl else []

    def last_seq(self, rung: str) -> int:
        return (self.seqs(rung) or [-1])[-1]

    def past(self, seq: int) -> int | None:
        """The newest seq listed in both rungs once both list three or more after `seq`: the
        first after a switch may have been cut (not yet listed) before it, the second may hold
        both sides of it, the third is all the new side's."""
        newest = [[s for s in self.seqs(rung) if s > seq] for rung in (TOP, BOTTOM)]
        return min(n[-1] for n in newest) if all(len(n) >= 3 for n in newest) else None

    def mean_volume_db(self, rung: str, seq: int) -> float:
        """ffmpeg's volumedetect over one segment (after its init), as fetched over HTTP."""
        pl = self.playlist(rung)
        init = requests.get(f"{self.base}/live/{FEED}/{rung}/{pl.segment_map[0].uri}", timeout=15).content
        segment = requests.get(f"{self.base}/live/{FEED}/{rung}/{seq}.m4s", timeout=15)
        assert segment.status_code == 200, (rung, seq, segment.status_code)
        run = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", "pipe:0", "-map", "0:a", "-af", "volumedetect",
                              "-f", "null", "-"], input=init + segment.content, capture_output=True, timeout=60)
        assert run.returncode == 0, run.stderr.decode(errors="replace")[-500:]
        found = re.search(rb"mean_volume: (-?[\d.]+|-inf) dB", run.stderr)
        assert found, run.stderr.decode(errors="replace")[-500:]
        return float(found.group(1))

    def send(self, seconds: float) -> subprocess.Popen:
        return send_srt(self.port, seconds, PASSPHRASE, size="320x180")

    def send_until_taken(self, seconds: float, timeout: float = 90) -> subprocess.Popen:
        """A caller that finds no listener gives up; started again, as encoders do, until the
        feed takes its media."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = time.time()
            sender = self.send(seconds)
            while sender.poll() is None:
                last = self.feed()["input"]["last_media_at"]
                if last is not None and last > started:
                    return sender
                time.sleep(0.25)
        raise AssertionError("the SRT listener never took the sender")

    def catalog(self) -> list[tuple[str, int]]:
        import ray

        rows = self.pipeline.catalog_rows(FEED)
        return [(r["rendition"], r["seq"]) for r in rows if r["feed"] == FEED]


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory):
    import ray
    from ray import serve

    from pipelines.live import start
    from pipelines.local import init_local_ray

    assert not ray.is_initialized(), "own_cluster: this module must run before the shared Ray starts"
    tmp = tmp_path_factory.mktemp("slate")
    port = reserved_port()
    config = small_config(tmp, {"name": FEED, "slate_after": SLATE_AFTER,
                                "source": f"srt://127.0.0.1:{port}?mode=listener&passphrase={PASSPHRASE}&pbkeylen=16"})
    init_local_ray(namespace="orbitcast-slate-test", num_cpus=4, log_to_driver=False)
    pipeline = start(config)
    try:
        relay = Relay(pipeline, port)
        wait_for("the feed's listener in /api/feeds", relay.feed, timeout=120)
        yield relay
    finally:
        pipeline.stop()
        serve.shutdown()
        ray.shutdown()


def test_the_slate_covers_a_lost_sender_and_gives_way_when_it_returns(relay: Relay) -> None:
    first = relay.send_until_taken(12)
    try:
        # The listener waited for its first sender behind the slate too (from `slate_after`
        # after the start), so what was listed before the sender was taken is slate, and the
        # segment then being cut holds both: the sender's own begin after it.
        taken = max(relay.last_seq(TOP), relay.last_seq(BOTTOM))
        live_seq = wait_for("live segments in both rungs", lambda: relay.past(taken), timeout=90)
        assert relay.mean_volume_db(BOTTOM, live_seq) > -40  # the sender's tone
        feed = relay.feed()
        assert not feed["slate"]
        # who sends, and SRT's own view of the link
        assert feed["input"]["remote_address"].startswith("127.0.0.1:"), feed["input"]
        assert feed["input"]["srt"]["connected"] and feed["input"]["srt"]["packets_received"] > 0, feed["input"]
        # a player on the bottom rung from now on, across the outage and the return
        reader = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", f"{relay.base}/live/{FEED}/{BOTTOM}/index.m3u8",
             "-t", "25", "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert first.wait(timeout=60) == 0, first.stderr.read()
    finally:
        first.kill()

    # The sender is gone: the slate goes out `slate_after` seconds after its last media.
    feed = wait_for("the slate", lambda: (f := relay.feed())["slate"] and f, timeout=30, every=0.25)
    lost_at = feed["input"]["last_media_at"]
    assert lost_at is not None and SLATE_AFTER - 0.5 <= feed["slate_since"] - lost_at <= SLATE_AFTER + 5, feed
    assert feed["input"]["srt"]["connected"] is False, feed["input"]
    # ...on the same timeline: the playlists go on (no end), and what they add is silent
    edge = max(relay.last_seq(TOP), relay.last_seq(BOTTOM))
    slated = wait_for("slate segments", lambda: relay.past(edge), timeout=30)
    for rung in (TOP, BOTTOM):
        assert not relay.playlist(rung).is_endlist
        assert relay.mean_volume_db(rung, slated) < -80, rung  # silence (-91 dB)

    # The sender comes back: its picture and tone replace the slate.
    second = relay.send_until_taken(10)
    try:
        wait_for("the slate to give way", lambda: not relay.feed()["slate"], timeout=30, every=0.25)
        on_slate = max(relay.last_seq(TOP), relay.last_seq(BOTTOM))
        back = wait_for("the returning sender's segments", lambda: relay.past(on_slate), timeout=60)
        for rung in (TOP, BOTTOM):
            assert relay.mean_volume_db(rung, back) > -40, rung
        assert second.wait(timeout=60) == 0, second.stderr.read()
    finally:
        second.kill()

    # the player read 25 s of media across both switches without an error
    assert reader.wait(timeout=90) == 0, reader.stderr.read()
    made = relay.catalog()
    assert len(made) == len(set(made)), "a seq was made twice"
    for rung in (TOP, BOTTOM):
        seqs = sorted(seq for r, seq in made if r == rung)
        assert live_seq < slated < back and {live_seq, slated, back} <= set(seqs)
