"""The viewer path over real HTTP (uvicorn, requests): playlists, parts, segments and init from a
replica's window, blocking reloads and preload hints held until the part arrives, the 4xx a bad
request gets, and everything else handed to the fallback app."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from urllib.parse import urljoin

import m3u8
import pytest
import requests

from orbitcast.delivery.live_http import LiveHTTP
from orbitcast.delivery.names import init_tag
from orbitcast.delivery.replica import ReplicaState
from orbitcast.delivery.signed_urls import sign
from orbitcast.delivery.updates import Batch
from orbitcast.delivery.window import InitUpdate, PartUpdate, SegmentUpdate
from tests.unit.gateway_fixtures import ServerThread
from tests.unit.test_window import POLICY, S, info, part, whole

INIT = b"init-360p"


class Replica:
    """A ReplicaState served by LiveHTTP on uvicorn; `apply` runs on the server's event loop."""

    def __init__(self, viewer_keys: dict[str, str] | None = None, tokens_required: bool = False,
                 max_held_per_client: int = 0) -> None:
        self.state = ReplicaState(POLICY)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.version = 0

        async def fallback(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
            self.loop = asyncio.get_running_loop()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"fallback"})

        self.server = ServerThread(LiveHTTP(self.state, fallback, POLICY.segment_duration, viewer_keys, tokens_required,
                                            max_held_per_client))

    def __enter__(self) -> "Replica":
        self.server.__enter__()
        assert requests.get(self.server.url + "/anything", timeout=5).text == "fallback"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def apply(self, *updates: object) -> None:
        self.version += 1
        batch = Batch("edge", self.version, list(updates), False, {})
        done = threading.Event()
        assert self.loop is not None
        self.loop.call_soon_threadsafe(lambda: (self.state.apply(batch), done.set()))
        assert done.wait(5)

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(self.server.url + path, params=params, timeout=15)


def filled(r: Replica) -> Replica:
    r.apply(InitUpdate("iss", info("360p"), INIT), InitUpdate("iss", info("720p", 2_000_000), b"init-720p"))
    for i in range(4):
        r.apply(PartUpdate(part(S, i)))
    r.apply(SegmentUpdate(whole(S)), PartUpdate(part(S + 1, 0)))
    return r


@pytest.fixture
def replica():
    with Replica() as r:
        yield filled(r)


def test_playlists_and_media_come_from_the_window(replica: Replica) -> None:
    master = replica.get("/live/iss/master.m3u8")
    assert master.status_code == 200 and master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert m3u8.loads(master.text).is_variant
    r = replica.get("/live/iss/360p/index.m3u8")
    pl = m3u8.loads(r.text)
    assert r.headers["access-control-allow-origin"] == "*" and "max-age=1" in r.headers["cache-control"]
    assert pl.media_sequence == S and pl.preload_hint.uri == f"{S + 1}.1.m4s"
    seg = replica.get(f"/live/iss/360p/{S}.m4s")
    assert seg.content == whole(S).data and "immutable" in seg.headers["cache-control"]
    assert int(seg.headers["content-length"]) == len(seg.content)
    assert replica.get(f"/live/iss/360p/{S + 1}.0.m4s").content == part(S + 1, 0).data
    init = replica.get(f"/live/iss/360p/init.mp4?v={init_tag(INIT)}")
    assert init.content == INIT and "immutable" in init.headers["cache-control"]
    bare = replica.get("/live/iss/360p/init.mp4")
    assert bare.content == INIT and "immutable" not in bare.headers["cache-control"]
    assert replica.get("/live/iss/360p/init.mp4?v=000000000000").status_code == 404
    head = requests.head(replica.server.url + f"/live/iss/360p/{S}.m4s", timeout=5)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == len(seg.content)


def test_a_blocking_reload_is_held_until_its_part_arrives(replica: Replica) -> None:
    with ThreadPoolExecutor(50) as pool:
        started = time.monotonic()
        waiting = [pool.submit(replica.get, "/live/iss/360p/index.m3u8", _HLS_msn=str(S + 1), _HLS_part="1")
                   for _ in range(50)]
        time.sleep(0.5)
        assert not any(f.done() for f in waiting)
        replica.apply(PartUpdate(part(S + 1, 1)))
        answers = [f.result() for f in waiting]
    assert all(a.status_code == 200 for a in answers)
    assert all(f"{S + 1}.1.m4s" in a.text for a in answers)
    assert all(float(a.headers["orbitcast-ready-at"]) >= time.time() - 10 for a in answers)
    assert time.monotonic() - started < 5


def _held_answers(r: Replica, path: str, params: dict[str, str], count: int, release: object) -> list[requests.Response]:
    """`count` held GETs on keep-alive sessions, released by applying `release`; then each
    session asks once more on the same connection (the connection goes on after a held answer)."""
    sessions = [requests.Session() for _ in range(count)]
    for s in sessions:  # connect first: the held requests then wait on open keep-alive connections
        assert s.get(r.server.url + "/live/iss/master.m3u8", timeout=10).status_code == 200
    with ThreadPoolExecutor(count) as pool:
        waiting = [pool.submit(s.get, r.server.url + path, params=params, timeout=15) for s in sessions]
        time.sleep(0.5)
        assert not any(f.done() for f in waiting)
        r.apply(release)
        answers = [f.result() for f in waiting]
    again = [s.get(r.server.url + "/live/iss/360p/index.m3u8", timeout=10) for s in sessions]
    assert all(a.status_code == 200 and f"{S + 1}.1.m4s" in a.text for a in again)
    for s in sessions:
        s.close()
    return answers


def _comparable(headers: requests.structures.CaseInsensitiveDict) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in ("date", "orbitcast-ready-at")}


def test_held_answers_are_written_whole_from_the_arrival_and_match_what_asgi_sends() -> None:
    """A part's arrival writes every held answer in one piece (whole_answer.py): the same status,
    headers and bytes as the ASGI path gives (compared with it switched off), and the
    keep-alive connection serves the next request."""
    got: dict[str, list[requests.Response]] = {}
    for way in ("whole", "asgi"):
        with Replica() as r:
            filled(r)
            live = r.server._server.config.app
            if way == "asgi":
                live.whole = None
            got[way] = _held_answers(r, "/live/iss/360p/index.m3u8", {"_HLS_msn": str(S + 1), "_HLS_part": "1"},
                                     20, PartUpdate(part(S + 1, 1)))
            assert r.state.written_whole == (20 if way == "whole" else 0)
            assert r.state.held == 0
    for way, answers in got.items():
        assert all(a.status_code == 200 for a in answers), way
        pl = m3u8.loads(answers[0].text)
        assert pl.segments[-1].parts[-1].uri == f"{S + 1}.1.m4s" and pl.preload_hint.uri == f"{S + 1}.2.m4s"
        assert len({a.content for a in answers}) == 1 and len({a.headers["orbitcast-ready-at"] for a in answers}) == 1
    assert got["whole"][0].content == got["asgi"][0].content
    assert _comparable(got["whole"][0].headers) == _comparable(got["asgi"][0].headers)


def test_held_parts_are_written_whole_and_a_head_goes_through_asgi() -> None:
    with Replica() as r:
        filled(r)
        with ThreadPoolExecutor(1) as pool:
            head = pool.submit(requests.head, f"{r.server.url}/live/iss/360p/{S + 1}.1.m4s", timeout=15)
            answers = _held_answers(r, f"/live/iss/360p/{S + 1}.1.m4s", {}, 10, PartUpdate(part(S + 1, 1)))
            headed = head.result()
        assert all(a.status_code == 200 and a.content == part(S + 1, 1).data for a in answers)
        assert all(a.headers["cache-control"] == answers[0].headers["cache-control"] for a in answers)
        assert int(answers[0].headers["content-length"]) == len(part(S + 1, 1).data)
        assert headed.status_code == 200 and headed.content == b""
        assert int(headed.headers["content-length"]) == len(part(S + 1, 1).data)
        assert r.state.written_whole == 10  # the HEAD went through ASGI


def test_the_preload_hinted_part_is_held_then_served(replica: Replica) -> None:
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(replica.get, f"/live/iss/360p/{S + 1}.1.m4s")
        time.sleep(0.3)
        assert not waiting.done()
        replica.apply(PartUpdate(part(S + 1, 1)))
        got = waiting.result()
    assert got.status_code == 200 and got.content == part(S + 1, 1).data


def test_a_segment_another_replica_listed_first_is_held_here_until_it_closes(replica: Replica) -> None:
    """A player reads a playlist from a replica that has just closed S + 1 and asks this one,
    a moment behind, for the segment: held, not 404. A segment further ahead is 404 at once."""
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(replica.get, f"/live/iss/360p/{S + 1}.m4s")
        time.sleep(0.3)
        assert not waiting.done()
        assert replica.get(f"/live/iss/360p/{S + 3}.m4s").status_code == 404
        replica.apply(*(PartUpdate(part(S + 1, i)) for i in range(1, 4)), SegmentUpdate(whole(S + 1)))
        got = waiting.result()
    assert got.status_code == 200 and got.content == whole(S + 1).data


def test_a_segment_closed_short_of_its_last_parts_is_answered_with_its_certified_bytes(replica: Replica) -> None:
    """S + 1's last part died with its encoder; the one that took the feed over makes S + 1
    again whole, and S + 2's first part comes before it: the playlist lists S + 1 from the
    parts it has, and a request for its bytes waits for the certified segment (the parts
    alone are bytes no proof covers)."""
    replica.apply(*(PartUpdate(part(S + 1, i)) for i in range(1, 3)), PartUpdate(part(S + 2, 0)))
    assert f"{S + 1}.m4s" in replica.get("/live/iss/360p/index.m3u8").text
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(replica.get, f"/live/iss/360p/{S + 1}.m4s")
        time.sleep(0.3)
        assert not waiting.done()
        replica.apply(SegmentUpdate(whole(S + 1)))
        got = waiting.result()
    assert got.status_code == 200 and got.content == whole(S + 1).data


@pytest.mark.parametrize("path,status", [
    ("/live/iss/360p/index.m3u8?_HLS_part=1", 400),
    (f"/live/iss/360p/index.m3u8?_HLS_msn={S + 40}", 400),
    ("/live/nosuch/master.m3u8", 404),
    ("/live/iss/1080p/index.m3u8", 404),
    (f"/live/iss/360p/{S - 50}.m4s", 404),
    (f"/live/iss/360p/{S + 40}.0.m4s", 404),
    ("/live/iss/360p/12.ts", 400),
    ("/live/iss/360p/012.m4s", 400),
    ("/live/%2e%2e/360p/1.m4s", 400),
    ("/live/iss/360p/extra/1.m4s", 400),
])
def test_bad_requests_get_a_short_4xx(replica: Replica, path: str, status: int) -> None:
    r = requests.get(replica.server.url + path, timeout=10)
    assert r.status_code == status, (path, r.text)
    assert len(r.text) < 120 and "Traceback" not in r.text


def test_a_held_request_that_times_out_is_503() -> None:
    with Replica() as r:
        r.server._server.config.app.hold_s = 0.3  # the LiveHTTP instance; 3 s by the policy
        r.apply(InitUpdate("iss", info("360p"), INIT), PartUpdate(part(S, 0)))
        started = time.monotonic()
        got = r.get("/live/iss/360p/index.m3u8", _HLS_msn=str(S), _HLS_part="1")
        assert got.status_code == 503 and got.headers["retry-after"] == "1"
        assert 0.25 < time.monotonic() - started < 3


KEYS = {"old": "o" * 40, "new": "n" * 40}


def every_uri_under(r: Replica, master_url: str) -> dict[str, int]:
    """Status of every URI a player reaches from a master playlist, resolved as players do."""
    seen: dict[str, int] = {}
    master = requests.get(master_url, timeout=10)
    seen[master_url] = master.status_code
    for child in m3u8.loads(master.text).playlists:
        media_url = urljoin(master_url, child.uri)
        media = requests.get(media_url, timeout=10)
        seen[media_url] = media.status_code
        pl = m3u8.loads(media.text)
        uris = [s.uri for s in pl.segments] + [p.uri for s in pl.segments for p in s.parts]
        uris += [pl.segment_map[0].uri] + [rr.uri for rr in pl.rendition_reports]
        assert pl.preload_hint is None or "/" not in pl.preload_hint.uri  # relative: it keeps the token
        for uri in uris:
            url = urljoin(media_url, uri)
            seen[url] = requests.get(url, timeout=10).status_code
    return seen


def test_one_signed_master_url_reaches_every_uri_when_tokens_are_required() -> None:
    with Replica(KEYS, tokens_required=True) as r:
        filled(r)
        token = sign(KEYS, "new", "iss", int(time.time()) + 60)
        seen = every_uri_under(r, f"{r.server.url}/live/t/{token}/iss/master.m3u8")
        assert len(seen) >= 8 and set(seen.values()) == {200}, seen
        assert all(f"/live/t/{token}/iss/" in url for url in seen)
        # the same URIs without the token: refused, with a short reason
        plain = r.get(f"/live/iss/360p/{S}.m4s")
        assert plain.status_code == 403 and "signed URL is required" in plain.text and len(plain.text) < 120


@pytest.mark.parametrize("why,token", [
    ("expired", lambda: sign(KEYS, "new", "iss", int(time.time()) - 1)),
    ("signature", lambda: sign(KEYS, "new", "mars", int(time.time()) + 60)),  # another feed's
    ("another client", lambda: sign(KEYS, "old", "iss", int(time.time()) + 60, ip="198.51.100.1")),
    ("unknown key", lambda: sign({"k": "k" * 40}, "k", "iss", int(time.time()) + 60)),
    ("malformed", lambda: "not-a-token"),
])
def test_a_token_that_does_not_admit_is_403_on_every_route(why: str, token) -> None:
    with Replica(KEYS, tokens_required=True) as r:
        filled(r)
        for rest in ("master.m3u8", "360p/index.m3u8", f"360p/{S}.m4s", f"360p/{S + 1}.0.m4s", "360p/init.mp4"):
            got = r.get(f"/live/t/{token()}/iss/{rest}")
            assert got.status_code == 403 and why in got.text, (rest, got.text)
            assert "no-store" in got.headers["cache-control"]


def test_a_token_bound_to_the_clients_address_admits_it() -> None:
    with Replica(KEYS, tokens_required=True) as r:
        filled(r)
        token = sign(KEYS, "new", "iss", int(time.time()) + 60, ip="127.0.0.1")
        assert r.get(f"/live/t/{token}/iss/master.m3u8").status_code == 200


def test_without_keys_a_token_path_is_refused_and_plain_urls_play(replica: Replica) -> None:
    token = sign(KEYS, "new", "iss", int(time.time()) + 60)
    got = replica.get(f"/live/t/{token}/iss/master.m3u8")
    assert got.status_code == 403 and "not configured" in got.text
    assert replica.get("/live/iss/master.m3u8").status_code == 200


def test_a_client_over_its_share_of_held_requests_gets_429_and_the_others_their_part() -> None:
    with Replica(max_held_per_client=2) as r:
        filled(r)
        with ThreadPoolExecutor(3) as pool:
            asks = [pool.submit(r.get, "/live/iss/360p/index.m3u8", _HLS_msn=str(S + 1), _HLS_part="1") for _ in range(3)]
            # two are held until the part comes; the third is answered at once
            done, _ = wait(asks, timeout=5, return_when=FIRST_COMPLETED)
            assert len(done) == 1
            refused = done.pop()
            assert refused.result().status_code == 429
            assert refused.result().headers["retry-after"] == "1" and "too many held" in refused.result().text
            r.apply(PartUpdate(part(S + 1, 1)))
            answered = [a.result(timeout=10) for a in asks if a is not refused]
        assert [a.status_code for a in answered] == [200, 200]
        # the share is given back when a held request is answered
        assert r.get("/live/iss/360p/index.m3u8", _HLS_msn=str(S + 1), _HLS_part="1").status_code == 200
