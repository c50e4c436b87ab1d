"""Time-shift over real HTTP (uvicorn, requests, m3u8): a replica's `/live/` app with a catalog,
an archive opened with the edge's key (in a worker thread, as the edge's threads do) and its live
window; VOD ranges, catch-up EVENT playlists that grow, and the 400s and 404s."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urljoin

import m3u8
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitcast.archive import ArchiveReader, archived_of
from orbitcast.catalog import Catalog, put_init
from orbitcast.delivery.live_http import LiveHTTP
from orbitcast.delivery.names import init_tag
from orbitcast.delivery.playlists import iso_ms
from orbitcast.delivery.replica import ReplicaState
from orbitcast.delivery.timeshift import Timeshift, catalog_rows
from orbitcast.delivery.updates import Batch
from orbitcast.delivery.window import InitUpdate, SegmentUpdate
from orbitcast.retention import RetentionPolicy, apply_retention
from orbitcast.sealed_delivery import init_meta
from tests.unit.gateway_fixtures import ServerThread
from tests.unit.test_retention import EDGE, S0, SealedArchive, segment
from tests.unit.test_window import POLICY, info, whole

D = POLICY.segment_duration
RUNGS = ("360p", "240p")
LIVE = 100  # the window holds segments 100..105 (from S0); the catalog has flushed up to 101


def pdt(i: int) -> datetime:
    return datetime.fromtimestamp((S0 + i) * D, tz=timezone.utc)


def old_init(rendition: str) -> bytes:
    return f"init of an earlier run, {rendition}".encode()


class AsyncArchive:
    """The edge's archive as a replica reaches it: awaited, opened in another thread."""

    def __init__(self, reader: ArchiveReader) -> None:
        self.reader = reader

    async def segment(self, feed: str, rendition: str, seq: int) -> bytes | None:
        return await asyncio.to_thread(self.reader.segment, feed, rendition, seq)

    async def init(self, feed: str, rendition: str, tag: str) -> bytes | None:
        return await asyncio.to_thread(self.reader.init, feed, rendition, tag)


class Shifted:
    def __init__(self, root: Path) -> None:
        self.archive = a = SealedArchive(root)
        for r in RUNGS:
            init = old_init(r)
            meta = init_meta("iss", r, init)
            sealed = a.sealer.seal_segment(init, meta, {EDGE: a.edge.public}, a.blobs.put)
            put_init(a.store, "iss", r, init_tag(init), meta.digest, meta.size, archived_of(sealed, EDGE))
        for i in range(LIVE + 2):
            for r in RUNGS:
                tag = init_tag(old_init(r)) if i < 50 else init_tag(f"init-{r}".encode())
                a.add(segment(i, r), init=tag)
        a.catalog.flush()
        self.now = (pdt(LIVE + 6) + timedelta(seconds=0.5)).timestamp()
        self.state = ReplicaState(POLICY)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.version = 0
        self._apply(*(InitUpdate("iss", info(r), f"init-{r}".encode()) for r in RUNGS))
        for i in range(LIVE, LIVE + 6):
            self._apply(*(SegmentUpdate(whole(S0 + i, r)) for r in RUNGS))
        self.timeshift = Timeshift(self.state.window, catalog_rows(Catalog(a.store)), AsyncArchive(a.reader()),
                                   D, 3600, lambda: self.now)

        async def fallback(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
            self.loop = asyncio.get_running_loop()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"fallback"})

        self.server = ServerThread(LiveHTTP(self.state, fallback, D, timeshift=self.timeshift))

    def _apply(self, *updates: object) -> None:
        self.version += 1
        self.state.apply(Batch("edge", self.version, list(updates), False, {}))

    def apply_live(self, *updates: object) -> None:
        """On the server's loop, as a replica's follower does."""
        done = threading.Event()
        assert self.loop is not None
        self.loop.call_soon_threadsafe(lambda: (self._apply(*updates), done.set()))
        assert done.wait(5)

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(self.server.url + path, params=params, timeout=15)

    def url(self, path: str) -> str:
        return self.server.url + path


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory):
    s = Shifted(tmp_path_factory.mktemp("timeshift"))
    with s.server:
        assert s.get("/x").text == "fallback"
        yield s


def rng(first: int, end: int | None = None) -> dict[str, str]:
    out = {"start": iso_ms(pdt(first))}
    if end is not None:
        out["end"] = iso_ms(pdt(end))
    return out


def variants(s: Shifted, **params: str) -> dict[str, tuple[str, m3u8.M3U8]]:
    """rendition -> (its URL, its parsed playlist), read from the multivariant playlist."""
    r = s.get("/live/iss/master.m3u8", **params)
    assert r.status_code == 200, r.text
    base = s.url("/live/iss/master.m3u8")
    out = {}
    for p in m3u8.loads(r.text).playlists:
        url = urljoin(base, p.uri)
        child = requests.get(url, timeout=15)
        assert child.status_code == 200, child.text
        out[p.uri.split("/")[0]] = (url, m3u8.loads(child.text))
    return out


def test_a_past_range_plays_from_the_archive(shifted: Shifted) -> None:
    r = shifted.get("/live/iss/master.m3u8", **rng(10, 20))
    assert r.headers["cache-control"] == "public, max-age=86400"
    found = variants(shifted, **rng(10, 20))
    assert sorted(found) == sorted(RUNGS)
    for rendition, (url, pl) in found.items():
        assert pl.playlist_type == "vod" and pl.is_endlist
        assert [s.uri for s in pl.segments] == [f"{S0 + i}.m4s" for i in range(10, 20)]
        assert [s.current_program_date_time for s in pl.segments] == [pdt(i) for i in range(10, 20)]
        assert sum(s.duration for s in pl.segments) == 10 * D
        init = requests.get(urljoin(url, pl.segments[0].init_section.uri), timeout=15)
        assert init.status_code == 200 and init.content == old_init(rendition)
        assert "immutable" in init.headers["cache-control"]
        for i, seg in zip(range(10, 20), pl.segments):
            got = requests.get(urljoin(url, seg.uri), timeout=15)
            assert got.status_code == 200 and got.content == segment(i, rendition).data
            assert "immutable" in got.headers["cache-control"]


def test_a_range_into_the_live_window_joins_archive_and_window(shifted: Shifted) -> None:
    (url, pl), _ = variants(shifted, **rng(LIVE - 2, LIVE + 4)).values()
    assert [s.uri for s in pl.segments] == [f"{S0 + i}.m4s" for i in range(LIVE - 2, LIVE + 4)]
    assert not any(s.discontinuity or s.gap_tag for s in pl.segments)
    got = [requests.get(urljoin(url, s.uri), timeout=15).content for s in pl.segments]
    rendition = url.split("/")[-2]
    assert got[:2] == [segment(i, rendition).data for i in (LIVE - 2, LIVE - 1)]  # archive
    assert got[2:] == [whole(S0 + i, rendition).data for i in range(LIVE, LIVE + 4)]  # window
    # the init this range plays with is the live one
    assert requests.get(urljoin(url, pl.segments[0].init_section.uri), timeout=15).content == f"init-{rendition}".encode()


def test_a_range_across_an_init_change_is_a_discontinuity(shifted: Shifted) -> None:
    (url, pl), _ = variants(shifted, **rng(48, 52)).values()
    assert [s.discontinuity for s in pl.segments] == [False, False, True, False]
    inits = [requests.get(urljoin(url, s.init_section.uri), timeout=15).content for s in pl.segments]
    rendition = url.split("/")[-2]
    assert inits == [old_init(rendition)] * 2 + [f"init-{rendition}".encode()] * 2


def test_a_range_the_live_edge_has_not_passed_is_not_cached_long(shifted: Shifted) -> None:
    r = shifted.get("/live/iss/360p/index.m3u8", start=iso_ms(pdt(LIVE + 2)),
                    end=iso_ms(datetime.fromtimestamp(shifted.now, tz=timezone.utc)))
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=1"


def test_catch_up_grows_up_to_the_live_edge(shifted: Shifted) -> None:
    first = shifted.get("/live/iss/360p/index.m3u8", **rng(LIVE - 5))
    pl = m3u8.loads(first.text)
    assert pl.playlist_type == "event" and not pl.is_endlist
    assert [s.uri for s in pl.segments] == [f"{S0 + i}.m4s" for i in range(LIVE - 5, LIVE + 6)]
    shifted.apply_live(*(SegmentUpdate(whole(S0 + LIVE + 6, r)) for r in RUNGS))
    shifted.now += D
    second = shifted.get("/live/iss/360p/index.m3u8", **rng(LIVE - 5))
    grown = m3u8.loads(second.text)
    assert [s.uri for s in grown.segments][-1] == f"{S0 + LIVE + 6}.m4s"
    assert second.text.startswith(first.text)  # appended only


@pytest.mark.parametrize("path, params, reason", [
    ("master.m3u8", {"start": "yesterday"}, "start: expected ISO 8601"),
    ("master.m3u8", {"start": iso_ms(pdt(20)), "end": iso_ms(pdt(10))}, "end must be after start"),
    ("master.m3u8", {"end": iso_ms(pdt(10))}, "end needs a start"),
    ("master.m3u8", {"start": iso_ms(pdt(-3000)), "end": iso_ms(pdt(10))}, "longer than 3600 s"),
    ("360p/index.m3u8", {"start": iso_ms(pdt(LIVE + 100))}, "start is in the future"),
    ("360p/index.m3u8", {"start": iso_ms(pdt(10)), "_HLS_msn": "5"}, "_HLS_ directives"),
])
def test_bad_windows_are_400_with_a_reason(shifted: Shifted, path: str, params: dict[str, str], reason: str) -> None:
    r = shifted.get(f"/live/iss/{path}", **params)
    assert r.status_code == 400 and reason in r.text and r.headers["cache-control"] == "no-store"
    assert "Traceback" not in r.text and len(r.text) < 200


@pytest.mark.parametrize("path, params", [
    ("master.m3u8", rng(-200, -100)),  # before the archive begins
    ("360p/index.m3u8", rng(-200, -100)),
    ("nope/index.m3u8", rng(10, 20)),  # a rendition the feed never had
])
def test_a_range_without_media_is_404(shifted: Shifted, path: str, params: dict[str, str]) -> None:
    r = shifted.get(f"/live/iss/{path}", **params)
    assert r.status_code == 404, r.text
    assert shifted.get("/live/moon/master.m3u8", **rng(10, 20)).status_code == 404  # unknown feed


def test_segments_that_retention_deleted_leave_the_playlist(tmp_path: Path) -> None:
    s = Shifted(tmp_path)
    with s.server:
        apply_retention(s.archive.catalog, "iss", RetentionPolicy(max_age_s=60 * D), s.archive.delete,
                        now=pdt(LIVE + 6))  # segments 0..44 ended more than 60 D before
        pl = m3u8.loads(s.get("/live/iss/360p/index.m3u8", **rng(40, 50)).text)
        assert [x.uri for x in pl.segments] == [f"{S0 + i}.m4s" for i in range(45, 50)]
        assert s.get(f"/live/iss/360p/{S0 + 44}.m4s").status_code == 404
        assert s.get(f"/live/iss/360p/{S0 + 45}.m4s").content == segment(45).data
        assert s.get("/live/iss/360p/index.m3u8", **rng(10, 20)).status_code == 404


@settings(max_examples=60, deadline=None)
@given(start=st.one_of(st.none(), st.text(max_size=30), st.floats(allow_nan=True).map(str)),
       end=st.one_of(st.none(), st.text(max_size=30), st.integers(-10**12, 10**12).map(str)))
def test_any_window_is_answered_or_refused_never_a_500(shifted: Shifted, start: str | None, end: str | None) -> None:
    params = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    for path in ("master.m3u8", "360p/index.m3u8"):
        r = shifted.get(f"/live/iss/{path}", **params)
        assert r.status_code in (200, 400, 404), (params, r.status_code, r.text)
