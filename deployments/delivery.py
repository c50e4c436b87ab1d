"""The delivery application on Ray Serve: LL-HLS playlists, parts and segments (`LiveHTTP`), and
the viewer page, /api/feeds, /api/delivery, /api/clock, /api/analysis, /api/energy, /metrics, /healthz,
/time and the callback routes of a remote gateway (FastAPI, `pages`).

Each replica keeps its own copy of the live window (`ReplicaState`), following the edge with
long polls, so every viewer request is answered from this process's memory.
"""

import asyncio
import logging
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from ray import serve
from ray.exceptions import RayTaskError

from deployments.gateway import GatewayHealth
from deployments.metrics import ReplicaMetricsPage
from deployments.scaling import DEATH_NOTICED_S, HELD_METRIC
from deployments.scaling import POLICY as SCALING_POLICY
from orbitcast.analysis.table import AnalysisTable
from orbitcast.catalog import Catalog
from orbitcast.config import OrbitcastConfig
from orbitcast.delivery import http_policy
from orbitcast.delivery.analysis_api import AnalysisAPI
from orbitcast.delivery.fast_path import serve_live_here
from orbitcast.delivery.live_http import LiveHTTP
from orbitcast.delivery.playlists import iso_ms
from orbitcast.delivery.policy import policy_of
from orbitcast.delivery.replica import ReplicaState
from orbitcast.delivery.timeshift import Timeshift, catalog_rows
from orbitcast.energy.summary import PlanClock, energy_body
from orbitcast.gateway.callback_app import read_callback_body
from orbitcast.metrics.render import CONTENT_TYPE
from orbitcast.priority import take_lead
from orbitcast.standby import NotHolding
from orbitcast.store import Store
from orbitcast.vod.presentation import VodPresentation
from orbitcast.vod.state import JobStore

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
# A clock answer older than this is no use to a player measuring its latency.
CLOCK_TIMEOUT = 1.0
FOLLOW_TIMEOUT_S = 5.0  # a long poll to the edge returns after this with nothing new
ENERGY_CACHE_S = 2.0  # /api/energy asks the transcoder pool at most this often per replica
ENERGY_TIMEOUT_S = 3.0
# A scrape waits this long for fresh energy figures, else answers with the previous ones
# (Prometheus gives a scrape little time; the pool may take ENERGY_TIMEOUT_S, a first plan longer).
ENERGY_METRICS_WAIT_S = 0.5
VIEWERS_COUNTED = ("LL-HLS requests held by the replica that answered (a player waiting for the next part "
                   "holds about one; classic HLS players and other replicas are not counted); ?viewers=N states an audience")


def _not_found(what: str) -> PlainTextResponse:
    return PlainTextResponse(f"{what} not found\n", status_code=404, headers=http_policy.not_yet())


def _unavailable(what: str) -> PlainTextResponse:
    return PlainTextResponse(f"{what} unavailable\n", status_code=503,
                             headers={**http_policy.no_store(), "Retry-After": "1"})


def pages(replica: "Delivery") -> FastAPI:
    """Everything but /live: the page, its script, the status APIs, the clock, callbacks."""
    app = FastAPI(title="orbitcast", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> PlainTextResponse:
        # Never a stack trace to a client; Serve's logs keep it.
        return PlainTextResponse("internal error\n", status_code=500, headers=http_policy.no_store())

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=http_policy.no_store())

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        path = STATIC / name
        if name not in {"hls.min.js", "hls.js-LICENSE", "ledger-check.js"} or not path.is_file():
            return _not_found("file")
        return FileResponse(path, headers={**http_policy.CORS, "Cache-Control": "public, max-age=86400"})

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok\n", headers=http_policy.no_store())

    @app.get("/time")
    async def time_now() -> PlainTextResponse:
        # DASH UTCTiming urn:mpeg:dash:utc:http-iso:2014, from the authority that stamps every
        # segment's program date-time, so a player's latency is measured on the same clock.
        if replica.clock is None:
            return PlainTextResponse(iso_ms(datetime.fromtimestamp(time.time(), tz=timezone.utc)),
                                     headers=http_policy.no_store())
        try:
            text = await asyncio.wait_for(replica.clock.iso_now.remote(), timeout=CLOCK_TIMEOUT)
        except Exception:  # noqa: BLE001 - away or restarting: a player retries or uses its own
            return _unavailable("clock authority")
        return PlainTextResponse(text, headers=http_policy.no_store())

    @app.get("/api/clock")
    async def clock_status() -> Response:
        """Per clock (the authority, every stamping actor): offset, delay, error bound, last
        sync, reference state."""
        if replica.clock is None:
            return JSONResponse({"error": "no clock authority"}, status_code=503, headers=http_policy.no_store())
        try:
            body = await asyncio.wait_for(replica.clock.status.remote(), timeout=CLOCK_TIMEOUT)
        except Exception:  # noqa: BLE001
            return JSONResponse({"error": "clock authority unavailable"}, status_code=503,
                                headers={**http_policy.no_store(), "Retry-After": "1"})
        return JSONResponse(body, headers=http_policy.no_store())

    @app.get("/api/feeds")
    async def feeds() -> JSONResponse:
        body: dict = {"feeds": replica.state.feeds()}
        if replica.gateway is not None:  # the embedded gateway: queues, dead letters, alarm
            body["gateway"] = await replica.gateway.status()
        return JSONResponse(body, headers=http_policy.no_store())

    @app.get("/api/jobs")
    async def jobs() -> JSONResponse:
        """Recording jobs (orbitcast transcode): state, chunks done of all, ETA, errors (docs/vod.md)."""
        return JSONResponse({"jobs": await asyncio.to_thread(replica.jobs.statuses)}, headers=http_policy.no_store())

    @app.get("/api/analysis/{feed}")
    async def analysis(feed: str, request: Request) -> JSONResponse:
        """Faces and expressions per segment of `feed` in [start, end) (docs/analysis.md)."""
        answer = await replica.analysis.answer(feed, request.query_params.multi_items())
        return JSONResponse(answer.body, status_code=answer.status, headers=http_policy.no_store())

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text: every replica's and actor's metrics merged (docs/metrics.md)."""
        return Response(await replica.metrics.text(), media_type=CONTENT_TYPE, headers=http_policy.no_store())

    @app.get("/api/delivery")
    async def delivery_stats() -> JSONResponse:
        """The replica that answered: its cursor on the edge's log, held requests, and the time
        from a part's cut in the transcoder to its listing here (p50/p95/p99, ms)."""
        return JSONResponse(replica.state.stats(), headers=http_policy.no_store())

    @app.get("/api/energy")
    async def energy(request: Request) -> JSONResponse:
        """Watts per feed and rung, joules per media second, their source and error, an SCI
        figure per viewer-hour and the solar site's plan (docs/energy.md)."""
        raw = request.query_params.get("viewers")
        if raw is not None and not (raw.isdigit() and len(raw) <= 9):
            return JSONResponse({"error": "viewers must be a whole number, 0 or more"}, status_code=400,
                                headers=http_policy.no_store())
        body = await replica.energy_body(int(raw) if raw is not None else None)
        return JSONResponse(body, headers=http_policy.no_store())

    @app.post("/edge/callback")
    async def edge_callback(request: Request) -> Response:
        # A remote gateway delivers the edge's Threema messages here (the embedded one calls the
        # Edge actor directly); the Edge actor opens them.
        body = await read_callback_body(request)
        if body is None:
            return Response(status_code=400)
        return Response(status_code=await replica.edge_callback(body))

    @app.post("/sender/callback")
    async def sender_callback(request: Request) -> Response:
        # Delivery receipts for the sender identity; the SenderInbox opens them.
        body = await read_callback_body(request)
        if body is None or replica.inbox is None:
            return Response(status_code=400)
        return Response(status_code=await replica.inbox.handle_callback.remote(body))

    return app


class EdgeArchive:
    """Archived media for time-shift, opened by the edge (it holds the key) in its threads:
    this replica's event loop only awaits the answer. `edge()`: the edge to ask (either of a
    pair opens the archive)."""

    def __init__(self, edge) -> None:
        self._edge = edge

    @property
    def edge(self):
        return self._edge()

    async def segment(self, feed: str, rendition: str, seq: int) -> bytes | None:
        try:
            return await self.edge.archived_segment.remote(feed, rendition, seq)
        except Exception:  # noqa: BLE001 - the edge restarting: a player retries
            log.warning("archived segment %s/%s/%s: the edge did not answer", feed, rendition, seq)
            return None

    async def init(self, feed: str, rendition: str, tag: str) -> bytes | None:
        try:
            return await self.edge.archived_init.remote(feed, rendition, tag)
        except Exception:  # noqa: BLE001
            log.warning("archived init %s/%s/%s: the edge did not answer", feed, rendition, tag)
            return None


def _autoscaling(min_replicas: int, max_replicas: int) -> dict:
    return {"min_replicas": min_replicas, "max_replicas": max_replicas, "target_ongoing_requests": 256,
            "policy": {"policy_function": SCALING_POLICY}}


@serve.deployment(
    ray_actor_options={"num_cpus": 0},
    autoscaling_config=_autoscaling(1, 4),
    # Held LL-HLS requests are cheap coroutines: a replica holds thousands of them.
    max_ongoing_requests=4096,
    # Serve notices a replica's death at its next health check (10 s by default): the others
    # take its viewers at once, but until a replacement runs one more death leaves none.
    health_check_period_s=DEATH_NOTICED_S,
)
@serve.ingress()
class Delivery:
    # edge: the Edge actor, or the edge and its standby (actors/pair.py); clock: the
    # ClockAuthority (None: host clock); inbox: the SenderInbox
    def __init__(self, edge, config: OrbitcastConfig, clock=None, inbox=None, pool=None, governor=None) -> None:
        take_lead()  # the viewer path runs first, where the system allows (orbitcast/priority.py)
        self.edges = list(edge) if isinstance(edge, (list, tuple)) else [edge]
        self.holding = 0  # which of the edges last answered this replica's long poll with media
        self.config = config
        self.governor = governor  # the site's plan, live (energy.follow_plan): /api/energy's `ladder`
        self.pool = pool  # the TranscoderPool: members' energy reports
        self._energy_reports: tuple[float, list[dict]] | None = None
        self._energy_metrics: tuple[float, tuple[list[dict], dict]] | None = None
        self._energy_metrics_task: asyncio.Task | None = None
        self.plans = PlanClock(config) if config.energy.site is not None else None
        self.inbox = inbox
        self.clock = clock
        self.gateway = GatewayHealth() if config.threema.gateway_url is None else None
        self.segment_duration = config.segment_duration
        self.viewer_auth = config.serve.viewer_auth
        self.max_held_per_client = config.serve.max_held_per_client
        self.state = ReplicaState(policy_of(config))
        self.follower = secrets.token_hex(6)  # who hands the edge its window after a restart
        analysed = [f.name for f in config.feeds if config.analysis.covers(f.name)]
        tag_rows = AnalysisTable(Store(config.store)).query
        # time-shift playlists from a catalog query here (in a thread), media from the edge,
        # the analysis tags of analysed feeds from the analysis table
        archive = EdgeArchive(lambda: self.edge)
        self.timeshift = Timeshift(self.state.window, catalog_rows(Catalog(Store(config.store))), archive,
                                   config.segment_duration, config.archive.timeshift_max_span_s, time.time,
                                   tag_rows, analysed)
        # recordings (orbitcast transcode): playlists from the catalog, media from the edge
        self.jobs = JobStore(Store(config.store))
        self.vod = VodPresentation(self.jobs, catalog_rows(Catalog(Store(config.store))), archive)
        # analysis tags: near the live edge from the window, older ones from the analysis table
        self.analysis = AnalysisAPI(self.state.window, tag_rows,
                                    [f.name for f in config.feeds],
                                    analysed, config.archive.timeshift_max_span_s, time.time)
        # The constructor runs on the replica's event loop: follow the edge from there (each of a
        # pair: the one standing by holds the poll until it takes over).
        loop = asyncio.get_running_loop()
        self._follower = asyncio.gather(*(loop.create_task(self._follow(i)) for i in range(len(self.edges))))
        # requests, viewers (CMCD), part hops: reported to the metrics hub; GET /metrics
        energy = config.energy.enabled or config.energy.site is not None
        self.metrics = ReplicaMetricsPage(self.state, clock, self.gateway, self.energy_for_metrics if energy else None)

    def __serve_build_asgi_app__(self):
        live = LiveHTTP(self.state, pages(self), self.segment_duration,
                        self.viewer_auth.keys, self.viewer_auth.required, self.max_held_per_client,
                        self.timeshift, self.metrics.metrics, vod=self.vod)
        serve_live_here(live)  # this replica's server answers /live/ itself (fast_path.py)
        return live

    @property
    def edge(self):
        return self.edges[self.holding]

    async def _follow(self, index: int) -> None:
        edge = self.edges[index]
        # A pair's calls are not retried by Ray on a process it starts again (a second): the
        # other edge takes over meanwhile, and its held poll answers.
        updates = edge.updates.options(max_task_retries=0) if len(self.edges) > 1 else edge.updates
        while True:
            try:
                batch = await updates.remote(self.state.epoch, self.state.cursor, FOLLOW_TIMEOUT_S,
                                             self.follower, self.state.committed)
                self.holding = index
                if batch.adopt:  # an edge that started again or took over: it rebuilds its window from ours
                    await edge.adopt.remote(self.follower, self.state.hand_over(), self.state.health)
                    continue
            except asyncio.CancelledError:
                raise
            except RayTaskError as err:
                if isinstance(err.cause, NotHolding):
                    continue  # the standby: it held the poll while it stood by
                log.warning("delivery: following the edge failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            except Exception:  # noqa: BLE001 - the edge restarts: Ray brings it back
                if len(self.edges) == 1:
                    log.warning("delivery: following the edge failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            self.state.apply(batch)

    async def edge_callback(self, body: bytes) -> int:
        """A remote gateway's callback for the edge: to the one that holds (of a pair, the other
        when this one refuses)."""
        for attempt in range(len(self.edges)):
            try:
                return await self.edge.handle_callback.remote(body)
            except RayTaskError as err:
                if not isinstance(err.cause, NotHolding) or attempt == len(self.edges) - 1:
                    raise
                self.holding = (self.holding + 1) % len(self.edges)
        raise AssertionError("unreachable")

    async def _pool_energy(self) -> list[dict]:
        """The pool members' energy reports, asked for at most every ENERGY_CACHE_S."""
        cached = self._energy_reports
        if cached is not None and time.monotonic() - cached[0] < ENERGY_CACHE_S:
            reports = cached[1]
        elif self.pool is None or not self.config.energy.enabled:
            reports = []
        else:
            try:
                reports = await asyncio.wait_for(self.pool.energy.remote(), timeout=ENERGY_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - the pool restarting: the figures come back next time
                log.warning("energy: the transcoder pool did not answer", exc_info=True)
                reports = []
            self._energy_reports = (time.monotonic(), reports)
        return reports

    async def energy_for_metrics(self) -> tuple[list[dict], dict] | None:
        """/metrics: the members' reports (their running totals) and the /api/energy body, made
        at most every ENERGY_CACHE_S in a task of their own; a scrape waits for them at most
        ENERGY_METRICS_WAIT_S, else takes the previous ones (None before the first)."""
        made = self._energy_metrics[0] if self._energy_metrics is not None else None
        task = self._energy_metrics_task
        if task is None or (task.done() and (made is None or time.monotonic() - made >= ENERGY_CACHE_S)):
            task = self._energy_metrics_task = asyncio.get_running_loop().create_task(self._make_energy_metrics())
        await asyncio.wait({task}, timeout=ENERGY_METRICS_WAIT_S)
        return self._energy_metrics[1] if self._energy_metrics is not None else None

    async def _make_energy_metrics(self) -> None:
        try:
            reports = await self._pool_energy()
            self._energy_metrics = (time.monotonic(), (reports, await self.energy_body(None)))
        except Exception:  # noqa: BLE001 - the next scrape tries again
            log.warning("energy figures for /metrics failed", exc_info=True)

    async def energy_body(self, viewers: int | None) -> dict:
        reports = await self._pool_energy()
        plan = plan_error = None
        if self.plans is not None:
            try:
                plan = await asyncio.to_thread(self.plans.get)  # pvlib: a second, at most hourly
            except Exception as err:  # noqa: BLE001 - no pvlib, a bad site: said in the answer
                plan_error = f"{type(err).__name__}: {err}"[:300]
        counted = VIEWERS_COUNTED if viewers is None else "stated in the request (?viewers=)"
        body = energy_body(self.config, reports, viewers=self.state.held if viewers is None else viewers,
                           viewers_counted=counted, plan=plan, plan_error=plan_error,
                           now=datetime.now(timezone.utc),
                           feed_viewers=dict(self.state.held_by_feed) if viewers is None else None)
        if self.governor is not None:
            try:
                body["ladder"] = await asyncio.wait_for(self.governor.status.remote(), timeout=ENERGY_TIMEOUT_S)
            except Exception as err:  # noqa: BLE001 - restarting: said in the answer, back next time
                body["ladder"] = {"following": True, "error": f"{type(err).__name__}: {err}"[:300]}
        else:
            body["ladder"] = {"following": False}
        return body

    def record_autoscaling_stats(self) -> dict[str, float]:
        # /live/ requests skip Serve's accounting (fast_path.py): the held ones are counted here.
        return {HELD_METRIC: float(self.state.held)}

    def check_health(self) -> None:
        if self._follower.done():
            raise RuntimeError("this replica no longer follows the edge")


def build_app(edge, config: OrbitcastConfig, clock=None, inbox=None, pool=None, governor=None):
    """The bound Serve application for `serve.run`; `clock` is the ClockAuthority handle,
    `inbox` the SenderInbox that takes delivery receipts, `pool` the TranscoderPool (energy),
    `governor` the LadderGovernorActor (the ladder following the site's plan)."""
    s = config.serve
    return Delivery.options(autoscaling_config=_autoscaling(s.min_replicas, s.max_replicas)).bind(
        edge, config, clock, inbox, pool, governor)
