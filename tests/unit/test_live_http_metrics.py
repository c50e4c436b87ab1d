"""What a replica counts of the requests it answers, over real HTTP (uvicorn, requests): route
kinds and statuses, latency, CMCD viewers from headers and from the query (which must not change
the answer), garbage CMCD ignored and counted, and the CORS preflight a cross-origin player with
CMCD headers sends first."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from urllib.parse import quote

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from orbitcast.delivery.http_metrics import ReplicaMetrics, route_kind
from orbitcast.delivery.live_http import LiveHTTP
from orbitcast.delivery.replica import ReplicaState
from orbitcast.delivery.updates import Batch
from orbitcast.delivery.window import InitUpdate, PartUpdate, SegmentUpdate
from orbitcast.metrics import MetricsHub, render
from tests.unit.gateway_fixtures import ServerThread
from tests.unit.test_window import POLICY, S, info, part, whole

SID = "6e2fb550-c457-11e9-bb97-0800200c9a66"


class Metered:
    """A replica's window served by LiveHTTP with its metrics on."""

    def __init__(self) -> None:
        self.state = ReplicaState(POLICY)
        self.metrics = ReplicaMetrics()
        self.state.on_part_hop = self.metrics.part_hop.observe
        self.loop: asyncio.AbstractEventLoop | None = None
        self.version = 0

        async def fallback(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
            self.loop = asyncio.get_running_loop()
            status = 404 if scope["path"] == "/missing" else 200
            await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"fallback"})

        self.server = ServerThread(LiveHTTP(self.state, fallback, POLICY.segment_duration, metrics=self.metrics))

    def apply(self, *updates: object) -> None:
        self.version += 1
        batch = Batch("edge", self.version, list(updates), False, {})
        done = threading.Event()
        assert self.loop is not None
        self.loop.call_soon_threadsafe(lambda: (self.state.apply(batch), done.set()))
        assert done.wait(5)

    def get(self, path: str, **kw) -> requests.Response:  # type: ignore[no-untyped-def]
        return requests.get(self.server.url + path, timeout=15, **kw)

    def scrape(self) -> dict[str, dict[tuple, float]]:
        """This replica's metrics as a scrape renders them, parsed by prometheus_client."""
        now = time.time()
        text = render(MetricsHub().collect("delivery/test", self.metrics.snapshot(self.state.held, now), now))
        out: dict[str, dict[tuple, float]] = {}
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        return out


@pytest.fixture
def replica():
    r = Metered()
    with r.server:
        assert r.get("/anything").text == "fallback"
        r.apply(InitUpdate("iss", info("360p"), b"init-360p"))
        for i in range(4):
            r.apply(PartUpdate(part(S, i)))
        r.apply(SegmentUpdate(whole(S)), PartUpdate(part(S + 1, 0)))
        yield r


def requests_of(got: dict, kind: str, status: int) -> float:
    return got["orbitcast_http_requests_total"].get((("kind", kind), ("status", str(status))), 0.0)


def test_route_kinds() -> None:
    assert route_kind("/live/iss/master.m3u8") == "playlist"
    assert route_kind("/live/iss/360p/index.m3u8") == "playlist"
    assert route_kind("/live/iss/360p/init.mp4") == "init"
    assert route_kind("/live/iss/360p/12.m4s") == "segment"
    assert route_kind("/live/iss/360p/12.3.m4s") == "part"
    assert route_kind("/live/iss/360p/x.ts") == "other"
    assert route_kind("/api/feeds") == "other"


def test_requests_are_counted_by_kind_and_status(replica: Metered) -> None:
    assert replica.get("/live/iss/360p/index.m3u8").status_code == 200
    assert replica.get(f"/live/iss/360p/{S}.m4s").status_code == 200
    assert replica.get(f"/live/iss/360p/{S}.1.m4s").status_code == 200
    assert replica.get("/live/iss/360p/init.mp4").status_code == 200
    assert replica.get("/live/iss/360p/index.m3u8", params={"_HLS_part": "1"}).status_code == 400
    assert replica.get("/live/nope/360p/index.m3u8").status_code == 404
    assert replica.get("/missing").status_code == 404
    got = replica.scrape()
    assert requests_of(got, "playlist", 200) == 1 and requests_of(got, "playlist", 400) == 1
    assert requests_of(got, "playlist", 404) == 1
    assert requests_of(got, "segment", 200) == 1 and requests_of(got, "part", 200) == 1
    assert requests_of(got, "init", 200) == 1
    # the fallback app's answers too: the probe in the fixture, and the 404 here
    assert requests_of(got, "other", 200) == 1 and requests_of(got, "other", 404) == 1
    assert got["orbitcast_http_request_duration_seconds_count"][(("kind", "playlist"),)] == 3
    assert got.get("orbitcast_viewers", {}) == {}  # no CMCD, no viewers


def test_a_held_request_is_timed_with_its_hold_and_the_part_hop_is_measured(replica: Metered) -> None:
    def release() -> None:
        time.sleep(0.3)
        replica.apply(PartUpdate(replace(part(S + 1, 1), made_at=time.time() - 0.05)))

    threading.Thread(target=release).start()
    r = replica.get("/live/iss/360p/index.m3u8", params={"_HLS_msn": str(S + 1), "_HLS_part": "1"})
    assert r.status_code == 200
    got = replica.scrape()
    held_bucket = got["orbitcast_http_request_duration_seconds_bucket"]
    assert held_bucket[(("kind", "playlist"), ("le", "0.25"))] == 0  # it waited ~0.3 s for the part
    assert held_bucket[(("kind", "playlist"), ("le", "+Inf"))] == 1
    assert got["orbitcast_part_listed_latency_seconds_count"] == {(): 1.0}
    assert 0.05 <= got["orbitcast_part_listed_latency_seconds_sum"][()] < 1.0


def test_cmcd_headers_count_a_viewer_and_its_buffer(replica: Metered) -> None:
    headers = {"CMCD-Session": f'sid="{SID}",sf=h,st=l', "CMCD-Request": "bl=2100,su", "CMCD-Object": "ot=av,br=630"}
    for path in ("/live/iss/360p/index.m3u8", f"/live/iss/360p/{S}.1.m4s", f"/live/iss/360p/{S}.2.m4s"):
        assert replica.get(path, headers=headers).status_code == 200
    other = {"CMCD-Session": 'sid="another"', "CMCD-Status": "bs", "CMCD-Request": "bl=0"}
    assert replica.get(f"/live/iss/360p/{S}.3.m4s", headers=other).status_code == 200
    got = replica.scrape()
    assert got["orbitcast_viewers"] == {(("feed", "iss"),): 2.0}
    assert got["orbitcast_viewer_buffer_seconds_count"] == {(): 4.0}
    assert got["orbitcast_viewer_buffer_seconds_bucket"][(("le", "0.2"),)] == 1  # the starved one
    assert got["orbitcast_viewer_buffer_seconds_sum"][()] == pytest.approx(6.3)
    assert got["orbitcast_viewer_buffer_starvations_total"] == {(("feed", "iss"),): 1.0}
    assert got["orbitcast_cmcd_requests_total"] == {(("via", "header"),): 4.0}
    assert got["orbitcast_cmcd_invalid_total"] == {(): 0.0}


def test_cmcd_in_the_query_changes_nothing_in_the_answer(replica: Metered) -> None:
    cmcd = quote(f'bl=800,ot=m,sid="{SID}",su', safe="")
    plain = replica.get("/live/iss/360p/index.m3u8")
    with_cmcd = replica.get(f"/live/iss/360p/index.m3u8?CMCD={cmcd}")
    assert with_cmcd.status_code == 200 and with_cmcd.content == plain.content
    assert with_cmcd.headers["cache-control"] == plain.headers["cache-control"]
    blocking = replica.get(f"/live/iss/360p/index.m3u8?_HLS_msn={S}&_HLS_part=2&CMCD={cmcd}")
    assert blocking.status_code == 200
    part = replica.get(f"/live/iss/360p/{S}.1.m4s?CMCD={cmcd}")
    assert part.status_code == 200 and part.content == replica.get(f"/live/iss/360p/{S}.1.m4s").content
    got = replica.scrape()
    assert got["orbitcast_viewers"] == {(("feed", "iss"),): 1.0}
    assert got["orbitcast_cmcd_requests_total"] == {(("via", "query"),): 3.0}


def test_garbage_cmcd_is_ignored_and_counted_never_refused(replica: Metered) -> None:
    bad = {"CMCD-Session": 'sid="unterminated', "CMCD-Request": "bl=fast", "CMCD-Object": "ot=?!,="}
    for path in ("/live/iss/360p/index.m3u8", f"/live/iss/360p/{S}.1.m4s"):
        assert replica.get(path, headers=bad).status_code == 200
    assert replica.get("/live/iss/360p/index.m3u8?CMCD=%22%2C%2C%3D").status_code == 200
    got = replica.scrape()
    assert got["orbitcast_cmcd_invalid_total"] == {(): 7.0}
    assert got.get("orbitcast_viewers", {}) == {}


def test_refused_requests_count_no_viewer(replica: Metered) -> None:
    headers = {"CMCD-Session": f'sid="{SID}"'}
    assert replica.get("/live/made-up-feed/360p/index.m3u8", headers=headers).status_code == 404
    assert replica.get("/live/iss/360p/index.m3u8?_HLS_part=3", headers=headers).status_code == 400
    got = replica.scrape()
    assert got.get("orbitcast_viewers", {}) == {}
    assert got["orbitcast_cmcd_requests_total"] == {(("via", "header"),): 2.0}


def test_a_cors_preflight_lets_cmcd_headers_through(replica: Metered) -> None:
    r = requests.options(replica.server.url + "/live/iss/360p/index.m3u8", timeout=5, headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "cmcd-request,cmcd-session"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"cmcd-request", "cmcd-object", "cmcd-status", "cmcd-session"} <= allowed
    assert "GET" in r.headers["access-control-allow-methods"]
