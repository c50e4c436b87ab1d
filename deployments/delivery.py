"""The delivery application on Ray Serve: the viewer page, LL-HLS playlists, parts and segments,
/api/feeds, /healthz, /time.

Each replica keeps its own copy of the live window (`ReplicaState`), following the edge with
long polls, so every viewer request is answered from this process's memory. Blocking playlist
reloads and preload-hinted parts wait on asyncio events: no thread per held request.
"""

import asyncio
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from ray import serve

from orbitcast.config import OrbitcastConfig
from orbitcast.delivery import http_policy
from orbitcast.delivery.blocking import Readiness, parse_playlist_query
from orbitcast.delivery.names import BadName, check_name, parse_media_name
from orbitcast.delivery.playlists import iso_ms
from orbitcast.delivery.policy import policy_of
from orbitcast.delivery.replica import ReplicaState
from orbitcast.sealing.callback import MAX_CALLBACK_BYTES

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
# A clock answer older than this is no use to a player measuring its latency.
CLOCK_TIMEOUT = 1.0
FOLLOW_TIMEOUT_S = 5.0  # a long poll to the edge returns after this with nothing new
READY_HEADER = "Orbitcast-Ready-At"  # on held answers: when what they waited for arrived here

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


@serve.deployment(
    ray_actor_options={"num_cpus": 0},
    autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 256},
    # Held LL-HLS requests are cheap coroutines: a replica holds thousands of them.
    max_ongoing_requests=4096,
)
@serve.ingress(app)
class Delivery:
    # edge: the Edge actor; clock: the ClockAuthority (None: host clock); inbox: the SenderInbox
    def __init__(self, edge, config: OrbitcastConfig, clock=None, inbox=None) -> None:
        self.edge = edge
        self.inbox = inbox
        self.clock = clock
        self.policy = policy_of(config)
        self.state = ReplicaState(self.policy)
        self.playlist_cache = http_policy.live_playlist(config.segment_duration)
        self.blocking_cache = http_policy.blocking_playlist(self.policy.target_duration)
        # The constructor runs on the replica's event loop: follow the edge from there.
        self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            try:
                batch = await self.edge.updates.remote(self.state.epoch, self.state.cursor, FOLLOW_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the edge restarts: Ray brings it back
                log.warning("delivery: following the edge failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            self.state.apply(batch)

    def check_health(self) -> None:
        if self._follower.done():
            raise RuntimeError("this replica no longer follows the edge")

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
        return JSONResponse({"feeds": self.state.feeds()}, headers=http_policy.no_store())

    @app.get("/api/delivery")
    async def delivery_stats(self) -> JSONResponse:
        """The replica that answered: its cursor on the edge's log, held requests, and the time
        from a part's cut in the transcoder to its listing here (p50/p95/p99, ms)."""
        return JSONResponse(self.state.stats(), headers=http_policy.no_store())

    @app.get("/live/{feed}/master.m3u8")
    async def master(self, feed: str) -> Response:
        check_name(feed, "feed")
        text = self.state.window.master(feed)
        if text is None:
            return _not_found("feed")
        return Response(text, media_type=http_policy.PLAYLIST_TYPE, headers=self.playlist_cache)

    @app.get("/live/{feed}/{rendition}/index.m3u8")
    async def media(self, feed: str, rendition: str, request: Request) -> Response:
        check_name(feed, "feed")
        check_name(rendition, "rendition")
        ask = parse_playlist_query(request.query_params.multi_items())
        window = self.state.window
        headers = self.playlist_cache
        if ask.msn is not None:
            msn, part = ask.msn, ask.part
            ready = await self.state.wait_until(
                feed, rendition, lambda: window.playlist_ready(feed, rendition, msn, part), self.policy.blocking_timeout)
            if ready is Readiness.TOO_FAR:
                return PlainTextResponse("_HLS_msn/_HLS_part too far ahead of the live edge\n", status_code=400,
                                         headers=http_policy.no_store())
            if ready is Readiness.WAIT:
                return _unavailable("the requested part did not arrive in time")
            headers = {**self.blocking_cache, READY_HEADER: self._ready_at(feed, rendition)}
        text = window.media(feed, rendition, skip=ask.skip)
        if text is None:
            return _not_found("rendition")
        return Response(text, media_type=http_policy.PLAYLIST_TYPE, headers=headers)

    def _ready_at(self, feed: str, rendition: str) -> str:
        return f"{self.state.arrived.get((feed, rendition), 0.0):.6f}"

    @app.get("/live/{feed}/{rendition}/init.mp4")
    async def init(self, feed: str, rendition: str, request: Request) -> Response:
        check_name(feed, "feed")
        check_name(rendition, "rendition")
        data = self.state.window.init(feed, rendition)
        tag = self.state.window.init_tag(feed, rendition)
        if data is None:
            return _not_found("init segment")
        asked = request.query_params.get("v")
        if asked is None:  # the bare name follows a transcoder that changed its parameters
            return Response(data, media_type=http_policy.INIT_TYPE, headers=self.playlist_cache)
        if asked != tag:
            return _not_found("init segment version")
        return Response(data, media_type=http_policy.INIT_TYPE, headers=http_policy.immutable())

    @app.get("/live/{feed}/{rendition}/{name}")
    async def media_file(self, feed: str, rendition: str, name: str) -> Response:
        check_name(feed, "feed")
        check_name(rendition, "rendition")
        seq, index = parse_media_name(name)
        window = self.state.window
        if index is None:
            data = window.segment_bytes(feed, rendition, seq)
            if data is None:
                return _not_found("segment")
            return Response(data, media_type=http_policy.SEGMENT_TYPE, headers=http_policy.immutable())
        data = window.part_bytes(feed, rendition, seq, index)
        if data is None:
            # The preload-hinted part (or one just behind it): answer the moment it is cut.
            ready = await self.state.wait_until(
                feed, rendition, lambda: window.part_ready(feed, rendition, seq, index), self.policy.blocking_timeout)
            data = window.part_bytes(feed, rendition, seq, index) if ready is Readiness.READY else None
            if data is None:
                return _not_found("part") if ready is not Readiness.WAIT else _unavailable("the part did not arrive in time")
            return Response(data, media_type=http_policy.SEGMENT_TYPE,
                            headers={**http_policy.immutable(), READY_HEADER: self._ready_at(feed, rendition)})
        return Response(data, media_type=http_policy.SEGMENT_TYPE, headers=http_policy.immutable())

    @app.post("/edge/callback")
    async def edge_callback(self, request: Request) -> Response:
        # A remote gateway delivers the edge's Threema messages here (the embedded one calls the
        # Edge actor directly); the Edge actor opens them.
        body = await _callback_body(request)
        if body is None:
            return Response(status_code=400)
        return Response(status_code=await self.edge.handle_callback.remote(body))

    @app.post("/sender/callback")
    async def sender_callback(self, request: Request) -> Response:
        # Delivery receipts for the sender identity; the SenderInbox opens them.
        body = await _callback_body(request)
        if body is None or self.inbox is None:
            return Response(status_code=400)
        return Response(status_code=await self.inbox.handle_callback.remote(body))

    @app.get("/live/{rest:path}")
    async def malformed(self, rest: str) -> PlainTextResponse:
        # Anything else under /live (extra or encoded separators, dot segments) names nothing.
        raise BadName("malformed live path")


def _unavailable(reason: str) -> PlainTextResponse:
    return PlainTextResponse(reason + "\n", status_code=503, headers={**http_policy.no_store(), "Retry-After": "1"})


def build_app(edge, config: OrbitcastConfig, clock=None, inbox=None):
    """The bound Serve application for `serve.run`; `clock` is the ClockAuthority handle,
    `inbox` the SenderInbox that takes delivery receipts."""
    s = config.serve
    return Delivery.options(
        autoscaling_config={"min_replicas": s.min_replicas, "max_replicas": s.max_replicas, "target_ongoing_requests": 256},
    ).bind(edge, config, clock, inbox)
