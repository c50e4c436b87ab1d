"""A simulated viewer's whole loop against an LL-HLS origin on loopback whose timing is known:
parts cut every 0.2 s on the wall clock (orbitcast's playlist renderer writes the playlists,
blocking reloads and preload hints are held until the part exists), and a freeze of the
origin for two seconds. The viewer must play without a stall while parts come on time, stall
once for about the length of the freeze, and count exactly what it loaded. No Ray."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timezone

import aiohttp
import pytest
from aiohttp import web

from orbitcast.delivery.playlists import MediaView, PartLine, RenditionInfo, SegmentLine, master_playlist, media_playlist
from orbitcast.delivery.policy import PlaylistPolicy
from orbitcast.playtest.clock import measure
from orbitcast.playtest.simviewer import SimulatedViewer, ViewerOptions

POLICY = PlaylistPolicy(segment_duration=1.0, part_target=0.2, part_hold_back=0.6, window=12, keep=24,
                        parts_per_segment=5)
PART = 0.2
RUNGS = {"360p": 696_000, "240p": 396_000}


class Origin:
    """Parts of a live stream that started `T0`: part (seq, i) covers [seq + i * 0.2, ... + 0.2)
    on the epoch timeline and exists from its end (plus 20 ms) on, or after the freeze when
    its end falls inside it."""

    def __init__(self, freeze: tuple[float, float] | None) -> None:
        self.t0 = math.floor(time.time()) - 14.0  # 14 s of stream before the viewer comes
        self.freeze = freeze

    def ready_at(self, seq: int, index: int) -> float:
        end = seq + (index + 1) * PART
        if self.freeze and self.freeze[0] <= end < self.freeze[1]:
            return self.freeze[1] + 0.02
        return end + 0.02

    def cut(self, now: float) -> tuple[int, int]:
        """(seq, index) of the last part that exists at `now`."""
        last = int((now - 0.02) / PART) - 1  # parts counted from epoch 0
        seq, index = divmod(last, 5)
        while self.ready_at(seq, index) > now:  # held back by the freeze
            seq, index = (seq, index - 1) if index else (seq - 1, 4)
        return seq, index

    def view(self, now: float) -> MediaView:
        seq, index = self.cut(now)
        done = seq if index == 4 else seq - 1  # last complete segment
        first = max(int(self.t0), done - 11)
        segs = tuple(SegmentLine(s, 1.0, datetime.fromtimestamp(s, timezone.utc),
                                 parts=tuple(PartLine(s, i, PART, i == 0) for i in range(5)) if s > done - 3 else ())
                     for s in range(first, done + 1))
        open_parts = tuple(PartLine(done + 1, i, PART, i == 0) for i in range(index + 1)) if index < 4 else ()
        hint = (done + 1, len(open_parts))
        return MediaView(first, "abcdef012345", segs, datetime.fromtimestamp(done + 1, timezone.utc) if open_parts else None,
                         open_parts, hint)

    async def wait_for(self, seq: int, index: int) -> None:
        if index >= 5:
            seq, index = seq + 1, 0
        await asyncio.sleep(max(0.0, self.ready_at(seq, index) - time.time()))

    def app(self) -> web.Application:
        async def master(_: web.Request) -> web.Response:
            infos = [RenditionInfo(n, 640, 360, int(b * 1.2), b, "avc1.64001e,mp4a.40.2", 30.0) for n, b in RUNGS.items()]
            return web.Response(text=master_playlist(infos))

        async def playlist(req: web.Request) -> web.Response:
            q = req.query
            if "_HLS_msn" in q:
                await self.wait_for(int(q["_HLS_msn"]), int(q.get("_HLS_part", 0)))
            return web.Response(text=media_playlist(self.view(time.time()), POLICY, skip="_HLS_skip" in q))

        async def media(req: web.Request) -> web.Response:
            name = req.match_info["name"]
            if name.startswith("init"):
                return web.Response(body=b"\0" * 800)
            seq, *index = (int(x) for x in name.removesuffix(".m4s").split("."))
            if index:
                await self.wait_for(seq, index[0])
            size = RUNGS[req.match_info["rung"]] * (PART if index else 1.0) / 8
            return web.Response(body=b"\0" * int(size))

        async def now(_: web.Request) -> web.Response:
            return web.Response(text=datetime.now(timezone.utc).isoformat(timespec="milliseconds"))

        app = web.Application()
        app.router.add_get("/live/x/master.m3u8", master)
        app.router.add_get("/live/x/{rung}/index.m3u8", playlist)
        app.router.add_get("/live/x/{rung}/{name}", media)
        app.router.add_get("/time", now)
        return app


async def play(freeze_after: float | None, seconds: float, freeze_s: float = 2.0,
               options: ViewerOptions = ViewerOptions(log_requests=True)) -> tuple[SimulatedViewer, float]:
    origin = Origin(None)
    runner = web.AppRunner(origin.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/live/x/master.m3u8"
    try:
        async with aiohttp.ClientSession() as http:
            clock = await measure(http, url)
            start = time.monotonic()
            if freeze_after is not None:
                origin.freeze = (time.time() + freeze_after, time.time() + freeze_after + freeze_s)
            viewer = SimulatedViewer("v000", url, http, clock, start, options)
            await viewer.run(start + seconds)
            return viewer, clock.offset_s
    finally:
        await runner.cleanup()


def test_a_viewer_that_gets_its_parts_on_time_plays_without_a_stall():
    viewer, offset = asyncio.run(play(None, 5.0))
    r = viewer.record
    assert abs(offset) < 0.01  # the same host clock
    assert r.error is None and r.first_play is not None and r.stalls == []
    assert r.renditions[0].name == "360p" and len(r.renditions) == 1  # the first listed, kept on a fast link
    # PART-HOLD-BACK behind an edge that is at most a part (and the 20 ms cut delay) old
    lats = [v for _, v in r.latency]
    assert lats and all(0.6 <= v <= 0.6 + PART + 0.15 for v in lats), lats
    # about five parts a second, each asked for once: by its preload hint, or listed
    assert r.requests["reload"] >= 15 and r.requests["hint"] >= 15
    ok = [e for e in viewer.log if e["status"] == 200 and e["kind"] in ("part", "hint", "segment")]
    assert r.media_requests == len(ok)
    assert len({e["url"] for e in ok}) == len(ok)
    assert r.bytes == sum(e["bytes"] for e in viewer.log if e["status"] == 200 and e["kind"] in ("part", "hint", "segment", "init"))
    # delta updates, v2 as hls.js asks of a server that offers CAN-SKIP-DATERANGES
    assert any("_HLS_skip=v2" in e["url"] for e in viewer.log if e["kind"] == "reload")


def test_a_two_second_freeze_of_the_origin_is_one_stall_of_about_two_seconds():
    viewer, _ = asyncio.run(play(2.0, 7.0))
    r = viewer.record
    assert r.error is None and len(r.stalls) == 1, r.stalls
    (a, b), = r.stalls
    # the buffer (PART-HOLD-BACK, 0.6 s) runs dry 0.6 s into the freeze and fills with its end
    assert b - a == pytest.approx(2.0 - 0.6, abs=0.35)
    # the stall puts it that much further behind the camera; it plays on after it
    lat = [v for _, v in r.latency]
    assert max(lat) == pytest.approx(lat[0] + (b - a), abs=0.35)
    assert r.played_s > 7.0 - (b - a) - 1.0 and r.latency[-1][0] > b + 1


def test_a_viewer_left_five_seconds_behind_by_a_freeze_jumps_back_to_live():
    # The viewer page's liveMaxLatencyDurationCount (4 target durations): a 5 s freeze leaves the
    # player about 5 s behind, beyond hls.js's catch-up range; it jumps back to live.
    viewer, _ = asyncio.run(play(1.5, 10.0, freeze_s=5.0))
    r = viewer.record
    assert r.error is None and len(r.stalls) >= 1 and r.live_jumps == 1, (r.stalls, r.live_jumps)
    late = [v for t, v in r.latency if t > r.stalls[-1][1] + 1.0]
    assert max(v for _, v in r.latency) > 4.0 and late and max(late) < 2.0, r.latency
    # hls.js's default (never jump): it stays behind, playing at 1x out of the catch-up range
    viewer, _ = asyncio.run(play(1.5, 10.0, freeze_s=5.0, options=ViewerOptions(max_latency_tds=math.inf)))
    r = viewer.record
    assert r.live_jumps == 0 and r.latency[-1][1] > 4.0, r.latency
