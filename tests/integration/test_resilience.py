"""A transcoder pool member dies: its feed moves to another member and keeps playing, and no
sequence number is lost or listed twice."""

from __future__ import annotations

import time

import m3u8
import pytest
import ray

from tests.hls import whole_segments

pytestmark = pytest.mark.ray


def _seqs(live, feed: str, rendition: str) -> list[int]:
    pl = m3u8.loads(live.get(f"/live/{feed}/{rendition}/index.m3u8").text)
    return [int(s.uri.split(".")[0]) for s in whole_segments(pl)]


def test_feed_moves_when_its_transcoder_dies(live):
    live.wait_media("synth", 8)
    pool = live.pipeline.pool
    before = ray.get(live.pipeline.feeds["synth"].placement.remote())
    assert before is not None
    newest = max(_seqs(live, "synth", "360p"))
    ray.kill(ray.get(pool.member.remote(before)), no_restart=False)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        after = ray.get(live.pipeline.feeds["synth"].placement.remote())
        if after is not None and after != before and max(_seqs(live, "synth", "360p")) >= newest + 3:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"synth did not move off member {before} and go on playing")
    for rendition in ("360p", "240p"):
        seqs = _seqs(live, "synth", rendition)
        assert seqs == sorted(set(seqs)), seqs
        assert seqs[-1] - seqs[0] == len(seqs) - 1, f"a seq is missing: {seqs}"
    assert live.feeds()["synth"]["state"] == "live"
