"""The delivery application on Ray Serve: the viewer page, HLS playlists and segments,
/api/feeds, /healthz, /time. State lives in the Edge actor; replicas cache what is immutable."""


import asyncio
import time
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from ray import serve

from orbitcast.delivery import http_policy
from orbitcast.delivery.names import BadName, check_name, parse_segment_name
from orbitcast.delivery.playlists import iso_ms
from orbitcast.sealing.callback import MAX_CALLBACK_BYTES

STATIC = Path(__file__).parent / "static"
CACHE_BYTES = 128 * 1024 * 1024
# A clock answer older than this is no use to a player measuring its latency.
CLOCK_TIMEOUT = 1.0

app = FastAPI(title="orbitcast", docs_url=None, redoc_url=None, openapi_url=None)


@app.exception_handler(BadName)
async def _bad_name(_: Request, exc: BadName) -> PlainTextResponse:
    return PlainTextResponse(str(exc) + "\n", status_code=400, headers=http_policy.no_store())


@app.exception_handler(Exception)
async def _unexpected(_: Request, exc: Exception) -> PlainTextResponse:
    # Never a stack trace to a client; Serve's logs keep it.
    return PlainTextResponse("internal error\n", status_code=500, headers=http_policy.no_store())


def _not_found(what: str) -> PlainTextResponse:
    return PlainTextResponse(f"{what} not found\n", status_code=404, headers=http_policy.not_yet())


async def _callback_body(request: Request) -> bytes | None:
    """A gateway callback's body, or None when it is over Threema's size limit."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_CALLBACK_BYTES):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CALLBACK_BYTES:
            return None
    return body


class _ByteCache:
    """LRU of immutable bytes (init and media segments), bounded in total size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.items: OrderedDict[tuple, bytes] = OrderedDict()

    def get(self, key: tuple) -> bytes | None:
        data = self.items.get(key)
        if data is not None:
            self.items.move_to_end(key)
        return data

    def put(self, key: tuple, data: bytes) -> None:
        self.items[key] = data
        self.size += len(data)
        while self.size > self.limit:
            _, old = self.items.popitem(last=False)
            self.size -= len(old)


@serve.deployment(
    ray_actor_options={"num_cpus": 0},
    autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8},
    max_ongoing_requests=64,
)
@serve.ingress(app)
class Delivery:
    # edge: the Edge actor handle; clock: the ClockAuthority actor handle (None: host clock)
    def __init__(self, edge, segment_duration: float, clock=None, packager=None) -> None:
        self.edge = edge
        self.packager = packager
        self.clock = clock
        self.segment_duration = segment_duration
        self.cache = _ByteCache(CACHE_BYTES)

    @app.get("/")
    async def index(self) -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=http_policy.no_store())

    @app.get("/static/{name}")
    async def static(self, name: str) -> Response:
        path = STATIC / name
        if name not in {"hls.min.js", "hls.js-LICENSE"} or not path.is_file():
            return _not_found("file")
        return FileResponse(path, headers={**http_policy.CORS, "Cache-Control": "public, max-age=86400"})

    @app.get("/healthz")
    async def healthz(self) -> PlainTextResponse:
        return PlainTextResponse("ok\n", headers=http_policy.no_store())

    @app.get("/time")
    async def time_now(self) -> PlainTextResponse:
        # DASH UTCTiming urn:mpeg:dash:utc:http-iso:2014, from the authority that stamps every
        # segment's program date-time, so a player's latency is measured on the same clock.
        if self.clock is None:
            now = datetime.fromtimestamp(time.time(), tz=timezone.utc)
            return PlainTextResponse(iso_ms(now), headers=http_policy.no_store())
        try:
            text = await asyncio.wait_for(self.clock.iso_now.remote(), timeout=CLOCK_TIMEOUT)
        except Exception:  # noqa: BLE001 - away or restarting: a player retries or uses its own
            return PlainTextResponse("clock authority unavailable\n", status_code=503,
                                     headers={**http_policy.no_store(), "Retry-After": "1"})
        return PlainTextResponse(text, headers=http_policy.no_store())

    @app.get("/api/clock")
    async def clock_status(self) -> JSONResponse:
        """Per clock (the authority, every stamping actor): offset, delay, error bound, last
        sync, reference state."""
        if self.clock is None:
            return JSONResponse({"error": "no clock authority"}, status_code=503, headers=http_policy.no_store())
        try:
            body = await asyncio.wait_for(self.clock.status.remote(), timeout=CLOCK_TIMEOUT)
        except Exception:  # noqa: BLE001
            return JSONResponse({"error": "clock authority unavailable"}, status_code=503,
                                headers={**http_policy.no_store(), "Retry-After": "1"})
        return JSONResponse(body, headers=http_policy.no_store())

    @app.get("/api/feeds")
    async def feeds(self) -> JSONResponse:
        return JSONResponse({"feeds": await self.edge.feeds.remote()}, headers=http_policy.no_store())

    @app.get("/live/{feed}/master.m3u8")
    async def master(self, feed: str) -> Response:
        check_name(feed, "feed")
        text = await self.edge.master.remote(feed)
        if text is None:
            return _not_found("feed")
        return Response(text, media_type=http_policy.PLAYLIST_TYPE, headers=http_policy.live_playlist(self.segment_duration))

    @app.get("/live/{feed}/{rendition}/index.m3u8")
    async def media(self, feed: str, rendition: str) -> Response:
        check_name(feed, "feed")
        check_name(rendition, "rendition")
        text = await self.edge.media.remote(feed, rendition)
        if text is None:
            return _not_found("rendition")
        return Response(text, media_type=http_policy.PLAYLIST_TYPE, headers=http_policy.live_playlist(self.segment_duration))

    @app.get("/live/{feed}/{rendition}/init.mp4")
    async def init(self, feed: str, rendition: str) -> Response:
        check_name(feed, "feed")
        check_name(rendition, "rendition")
        data = await self.edge.init.remote(feed, rendition)
        if data is None:
            return _not_found("init segment")
        # Not cached here: a transcoder restarted with new parameters may replace it.
        return Response(data, media_type=http_policy.INIT_TYPE, headers=http_policy.live_playlist(self.segment_duration))

    @app.get("/live/{feed}/{rendition}/{segment}")
    async def segment(self, feed: str, rendition: str, segment: str) -> Response:
        check_name(feed, "feed")
        check_name(rendition, "rendition")
        seq = parse_segment_name(segment)
        key = (feed, rendition, seq)
        data = self.cache.get(key)
        if data is None:
            data = await self.edge.segment.remote(feed, rendition, seq)
            if data is None:
                return _not_found("segment")
            self.cache.put(key, data)
        return Response(data, media_type=http_policy.SEGMENT_TYPE, headers=http_policy.immutable())

    @app.post("/edge/callback")
    async def edge_callback(self, request: Request) -> Response:
        # The gateway delivers the edge's Threema messages here; the Edge actor opens them.
        body = await _callback_body(request)
        if body is None:
            return Response(status_code=400)
        return Response(status_code=await self.edge.handle_callback.remote(body))

    @app.post("/packager/callback")
    async def packager_callback(self, request: Request) -> Response:
        # Delivery receipts for the sender identity; the Packager opens them.
        body = await _callback_body(request)
        if body is None or self.packager is None:
            return Response(status_code=400)
        return Response(status_code=await self.packager.handle_callback.remote(body))

    @app.get("/live/{rest:path}")
    async def malformed(self, rest: str) -> PlainTextResponse:
        # Anything else under /live (extra or encoded separators, dot segments) names nothing.
        raise BadName("malformed live path")


def build_app(edge, segment_duration: float, min_replicas: int = 1, max_replicas: int = 4, clock=None, packager=None):
    """The bound Serve application for `serve.run`; `clock` is the ClockAuthority handle,
    `packager` the Packager that takes delivery receipts."""
    return Delivery.options(
        autoscaling_config={"min_replicas": min_replicas, "max_replicas": max_replicas, "target_ongoing_requests": 8},
    ).bind(edge, segment_duration, clock, packager)
