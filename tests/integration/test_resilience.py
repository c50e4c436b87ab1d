"""A transcoder pool member dies: its feed moves to another member and keeps playing, and no
sequence number is lost or listed twice. The gateway dies: what it had not delivered is queued
again from the store."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import m3u8
import pytest
import ray

from orbitcast.store import Store
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


def test_messages_waiting_for_an_absent_subscriber_outlive_the_gateway(live):
    """*SDKRECV (a subscriber of the file feed, its receiver not running now) has messages
    waiting in the gateway, written behind to the store. The gateway actor dies; Ray starts it
    again, and it queues them again, as old as they were; the edge still gets every segment."""
    who = "*SDKRECV"
    gateway = live.pipeline.gateway
    folder = Path(Store(live.config.store).path("threema-queues")) / who.replace("*", "_")

    def status() -> dict:
        return ray.get(gateway.delivery_status.remote(), timeout=60)

    live.wait_media("file", 4)
    deadline = time.monotonic() + 60
    while len(list(folder.glob("*.json"))) < 3:
        assert time.monotonic() < deadline, status()["recipients"][who]
        time.sleep(0.5)
    # the messages on disk now, less those that may reach max_age_s (dead letters) before the
    # restarted gateway reads them: the pipeline may have run longer than that
    max_age = ray.get(gateway.config.remote()).max_age_s
    dates = []
    for path in folder.glob("*.json"):
        try:
            dates.append(json.loads(path.read_text())["date"])
        except FileNotFoundError:  # settled (expired) meanwhile
            pass
    young = [d for d in dates if d > time.time() - max_age + 60]
    kept = len(young)
    assert kept >= 3, dates
    newest = max(_seqs(live, "synth", "360p"))
    def pid() -> int:
        return ray.get(gateway.__ray_call__.remote(lambda _: os.getpid()), timeout=60)

    first = pid()
    ray.kill(gateway, no_restart=False)  # as the process dying: nothing more is written
    # a call made at once may still reach the old process (the kill goes by way of the GCS)
    deadline = time.monotonic() + 60
    while pid() == first:
        assert time.monotonic() < deadline, "the gateway was not restarted"
        time.sleep(0.25)

    after = status()  # answered by the gateway Ray started again
    assert after["restored"] >= kept, (after["restored"], kept)
    assert after["recipients"][who]["queued"] >= kept
    # each as old as it was: the oldest of them counts from when the first gateway accepted it
    assert after["recipients"][who]["oldest_s"] >= time.time() - min(young) - 2
    # the feed goes on: the restarted gateway hands the edge its messages
    deadline = time.monotonic() + 60
    while max(_seqs(live, "synth", "360p")) < newest + 3:
        assert time.monotonic() < deadline, "synth stopped after the gateway's restart"
        time.sleep(0.5)
    seqs = _seqs(live, "synth", "360p")
    assert seqs == sorted(set(seqs)), seqs
