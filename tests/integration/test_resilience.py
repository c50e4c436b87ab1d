"""A transcoder pool member dies: its feed moves to another member and keeps playing, and no
sequence number is lost or listed twice. The packager dies: its standby takes the feed. The
feed's reader dies: its standby reads on. The edge dies: its standby takes over. The gateway dies: what it had not delivered is queued again from the store. The edge dies with
every Delivery replica: the stream comes back with its init segment."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import m3u8
import pytest
import ray
import requests

from orbitcast.store import Store
from tests.hls import whole_segments

pytestmark = pytest.mark.ray


def _seqs(live, feed: str, rendition: str) -> list[int]:
    pl = m3u8.loads(live.get(f"/live/{feed}/{rendition}/index.m3u8").text)
    return [int(s.uri.split(".")[0]) for s in whole_segments(pl)]


def test_feed_moves_when_its_transcoder_dies(live):
    live.wait_media("synth", 8)
    pool = live.pipeline.pool
    before = live.pipeline.feed_placement("synth")
    assert before is not None
    newest = max(_seqs(live, "synth", "360p"))
    ray.kill(ray.get(pool.member.remote(before)), no_restart=False)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        after = live.pipeline.feed_placement("synth")
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


def test_the_packagers_standby_takes_the_feed_when_the_packager_dies(live):
    """The packager that publishes the feed is killed (SIGKILL): the transcoder sends what was
    in flight to the standby, which takes the feed: no seq missing or listed twice, what it
    published is certified, and every seq served is in the catalog (the killed one's rows
    included). The killed one, started again by Ray, stands by, idle, also when the feed's
    transcoder member dies next and another takes the feed."""
    import signal

    import ray._private.state as state

    live.wait_media("synth", 4)
    pair = [live.pipeline.packagers["synth"], live.pipeline.standby_packagers["synth"]]
    publishing = [ray.get(p.stats.remote())["first_publish_at"] is not None for p in pair]
    assert publishing == [True, False], "the feed starts on its first packager; the standby is idle"
    primary, standby = pair
    pid = next(a["Pid"] for a in state.actors().values()
               if a["ActorID"] == primary._actor_id.hex() and a["State"] == "ALIVE")
    newest = max(_seqs(live, "synth", "360p"))
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)

    deadline = time.monotonic() + 90
    while max(_seqs(live, "synth", "360p")) < newest + 3:
        assert time.monotonic() < deadline, f"synth stopped after its packager died: {live.feeds()['synth']}"
        time.sleep(0.5)
    took = ray.get(standby.stats.remote())
    assert took["first_publish_at"] is not None and took["first_publish_at"] > killed_at, took["first_publish_at"]
    for rendition in ("360p", "240p"):
        seqs = _seqs(live, "synth", rendition)
        assert seqs == sorted(set(seqs)), seqs
        assert seqs[-1] - seqs[0] == len(seqs) - 1, f"a seq is missing: {seqs}"
        for seq in (s for s in seqs if s > newest):  # published by the standby: certified
            assert live.get(f"/ledger/synth/proof/{rendition}/{seq}").status_code == 200, (rendition, seq)
        # the archive lost nothing either: what the killed one had catalogued is in the store
        catalogued = {r["seq"] for r in live.pipeline.catalog_rows("synth") if r["rendition"] == rendition}
        missing = [s for s in seqs[:-1] if s not in catalogued]  # the newest may still be on its way
        assert not missing, f"{rendition}: seqs served but not in the catalog: {missing}"
    back = ray.get(primary.stats.remote(), timeout=60)  # started again by Ray
    assert back["started_at"] > killed_at and back["first_publish_at"] is None

    # The feed's transcoder member dies now: the member that takes the feed keeps to the
    # packager that has it, the standby, rather than hand the feed back to the first one.
    pool = live.pipeline.pool
    member = live.pipeline.feed_placement("synth")
    newest = max(_seqs(live, "synth", "360p"))
    ray.kill(ray.get(pool.member.remote(member)), no_restart=False)
    deadline = time.monotonic() + 90
    while max(_seqs(live, "synth", "360p")) < newest + 3:
        assert time.monotonic() < deadline, f"synth stopped after its member died: {live.feeds()['synth']}"
        time.sleep(0.5)
    assert ray.get(primary.stats.remote())["first_publish_at"] is None, "the feed went back to the first packager"
    assert ray.get(standby.stats.remote())["counters"]["sent"] > took["counters"]["sent"]
    assert live.feeds()["synth"]["state"] == "live"


def _sigkill_and_go_on(live, handle: "ray.actor.ActorHandle", what: str) -> None:
    """SIGKILL to the actor's process (no clean-up), then three new seqs listed."""
    import signal

    import ray._private.state as state

    pid = next(a["Pid"] for a in state.actors().values()
               if a["ActorID"] == handle._actor_id.hex() and a["State"] == "ALIVE")
    newest = max(_seqs(live, "synth", "360p"))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while max(_seqs(live, "synth", "360p")) < newest + 3:
        assert time.monotonic() < deadline, f"synth stopped after {what} died: {live.feeds()['synth']}"
        time.sleep(0.5)


def _until_roles(pair: list, want: list[str]) -> None:
    deadline = time.monotonic() + 60
    while (roles := ray.get([h.role.remote() for h in pair], timeout=60)) != want:
        assert time.monotonic() < deadline, roles
        time.sleep(0.5)


def _no_seq_missing_or_twice(live) -> None:
    for rendition in ("360p", "240p"):
        seqs = _seqs(live, "synth", rendition)
        assert seqs == sorted(set(seqs)), seqs
        assert seqs[-1] - seqs[0] == len(seqs) - 1, f"a seq is missing: {seqs}"
    assert live.feeds()["synth"]["state"] == "live"


def test_the_feeds_standby_reader_takes_the_source_when_the_reader_dies(live):
    """The FeedActor reading the feed's source is killed (SIGKILL): its standby reads on from
    where the transcoder's timeline stands, and the one Ray starts again stands by; then the
    new reader is killed and the first takes the feed back. No seq missing or listed twice, one
    reader at a time, and the feed says `live`."""
    from orbitcast.standby import HOLDING, STANDING_BY

    pair = live.pipeline.feed_actors_of("synth")
    assert len(pair) == 2, "a feed that pulls its source has a standby reader"
    live.wait_media("synth", 4)
    _until_roles(pair, [HOLDING, STANDING_BY])  # the feed starts on its first reader
    _sigkill_and_go_on(live, pair[0], "its reader")
    _until_roles(pair, [STANDING_BY, HOLDING])  # the first, started again by Ray, stands by
    _sigkill_and_go_on(live, pair[1], "its reader")
    _until_roles(pair, [HOLDING, STANDING_BY])
    _no_seq_missing_or_twice(live)


def test_the_edges_standby_takes_over_when_the_edge_dies(live):
    """The edge that holds is killed (SIGKILL): its standby takes the gateway's callbacks and
    rebuilds its window from the Delivery replicas, and the one Ray starts again stands by. The
    playlists go on with no seq missing or listed twice, and `/api/feeds` still knows the feed."""
    from orbitcast.standby import HOLDING, STANDING_BY

    edges = live.pipeline.edges
    assert len(edges) == 2, "the edge has a standby"
    live.wait_media("synth", 4)
    before = ray.get([e.role.remote() for e in edges], timeout=60)
    assert sorted(before) == [HOLDING, STANDING_BY], before
    _sigkill_and_go_on(live, edges[before.index(HOLDING)], "the edge")
    _until_roles(edges, before[::-1])  # the standby holds; the one started again stands by
    _no_seq_missing_or_twice(live)


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


def test_the_stream_comes_back_with_its_init_when_the_edge_dies_with_every_replica(live, tmp_path):
    """What a lost node can take: the edge and every Delivery replica at once. The edge Ray
    starts again has no replica to hand it the window back, and the packager sent the inits long
    before; the parts that come next name their init, and the edge opens it from the archive. A
    player gets a playlist, its init and new segments that decode with it."""
    import signal

    import ray._private.state as state

    live.wait_media("synth", 6)
    newest = max(_seqs(live, "synth", "360p"))
    victims = [a for a in state.actors().values() if a["State"] == "ALIVE"
               and (a["ActorClassName"] == "Edge" or a["ActorClassName"].startswith("ServeReplica:orbitcast:Delivery"))]
    assert {a["ActorClassName"] for a in victims} == {"Edge", "ServeReplica:orbitcast:Delivery"}, victims
    for a in victims:
        os.kill(a["Pid"], signal.SIGKILL)

    def playing() -> tuple[m3u8.M3U8, int] | None:
        try:
            r = live.get("/live/synth/360p/index.m3u8")
        except requests.RequestException:
            return None
        if r.status_code != 200:
            return None
        pl = m3u8.loads(r.text)
        seqs = [int(s.uri.split(".")[0]) for s in whole_segments(pl)]
        return (pl, seqs[-1]) if seqs and seqs[-1] > newest + 2 and pl.segment_map else None

    deadline = time.monotonic() + 90
    while (got := playing()) is None:
        assert time.monotonic() < deadline, f"synth did not come back after the edge and its replicas died: {live.get('/api/feeds').text[:2000]}"
        time.sleep(0.5)
    pl, last = got
    init = live.get(f"/live/synth/360p/{pl.segment_map[0].uri}")
    segment = live.get(f"/live/synth/360p/{last}.m4s")
    assert init.status_code == 200 and segment.status_code == 200, (init.status_code, segment.status_code)
    clip = tmp_path / "after.mp4"
    clip.write_bytes(init.content + segment.content)
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=nb_read_frames", "-of", "csv=p=0", str(clip)], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and int(probe.stdout.split(",")[0]) > 0, probe.stdout + probe.stderr
    assert ray.get(live.pipeline.edge.stats.remote(), timeout=30)["inits_recovered"].get("found", 0) >= 1
