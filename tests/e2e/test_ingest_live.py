"""A contribution feed on the live pipeline: Debian's ffmpeg sends an encrypted SRT stream to the
`dock` feed's listener, the ladder plays in every rung (ffprobe reads our HLS over HTTP), the
sender goes away and comes back, and no seq is ever made twice."""

from __future__ import annotations

import json
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import ray

from tests.conftest import SRT_PASSPHRASE
from tests.media import send_srt

pytestmark = pytest.mark.e2e
FEED = "dock"


def _send(live, seconds: float, passphrase: str = SRT_PASSPHRASE) -> subprocess.Popen:
    source = next(f.source for f in live.config.feeds if f.name == FEED)
    port = urlsplit(source).port
    assert port is not None
    return send_srt(port, seconds, passphrase)


def _send_until_taken(live, seconds: float, timeout: float = 90) -> subprocess.Popen:
    """A sender as encoders behave: a caller that finds no listener (ours reopens between two
    waits for a sender) gives up, and is started again, until the feed takes its media."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = time.time()
        sender = _send(live, seconds)
        while sender.poll() is None:
            last = live.feeds()[FEED]["input"]["last_media_at"]
            if last is not None and last > started:
                return sender  # the feed is taking this sender's media
            time.sleep(0.25)
        if sender.returncode == 0:
            raise AssertionError("the sender finished but the feed took nothing")
    raise AssertionError("the SRT listener never took the sender")


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _catalog(live) -> list[tuple[str, int]]:
    rows = live.pipeline.catalog_rows(FEED)
    return [(r["rendition"], r["seq"]) for r in rows if r["feed"] == FEED]


def _decodes_in_every_rung(live) -> None:
    for rung in live.config.ladder.rungs:
        url = f"{live.base}/live/{FEED}/{rung.name}/index.m3u8"
        # ffprobe reads our HLS over HTTP (the media playlist, its init and segments)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_entries", "stream=codec_name,width,height,sample_rate,channels",
             url], capture_output=True, text=True, timeout=60)
        assert probe.returncode == 0, (url, probe.stderr)
        streams = json.loads(probe.stdout)["streams"]
        video = next(s for s in streams if "width" in s)
        audio = next(s for s in streams if "sample_rate" in s)
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", rung.width, rung.height)
        assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "48000", 2)


def test_an_srt_contribution_plays_goes_away_comes_back_and_never_reuses_a_seq(live):
    live.wait_media("synth", 3)
    sent_at = time.time()
    first = _send_until_taken(live, 10)
    try:
        live.wait_media(FEED, 3, timeout=90)
        # What an operator sees of the input (decoded by the transcoder): a moving picture, a tone.
        shown = _until(lambda: (i := live.feeds()[FEED]["input"])["picture"] and i, 10, "the input's picture state")
        assert (shown["picture"], shown["sound"]) == ("ok", "ok"), shown
        for since in (shown["picture_since"], shown["sound_since"]):
            assert sent_at - 5 <= since <= time.time() + 1, shown
        _decodes_in_every_rung(live)
        assert first.wait(timeout=60) == 0, first.stderr.read()
    finally:
        first.kill()
    _until(lambda: live.feeds()[FEED]["reconnects"] >= 1, 30, "the feed to see its sender leave")
    before = _catalog(live)
    assert before and len(before) == len(set(before))

    second = _send_until_taken(live, 8)
    try:
        top = max(seq for _, seq in before)
        _until(lambda: any(seq > top + 2 for _, seq in _catalog(live)), 90, "segments from the returning sender")
        assert second.wait(timeout=60) == 0, second.stderr.read()
    finally:
        second.kill()
    after = _catalog(live)
    # every (rendition, seq) made once, the second session's after the first's
    assert len(after) == len(set(after)), sorted(after)
    assert set(before) <= set(after)
