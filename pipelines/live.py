"""The live pipeline: wires the clock authority, the embedded gateway, edge, packagers (one per
feed), transcoder pool, feeds and the Serve apps from one configuration.

`python -m pipelines.live orbitcast.yaml` is the `ray job submit` entry point; it runs until
the job is stopped (SIGTERM) or interrupted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import ray
from ray import serve
from ray.serve.api import RunTarget

from actors.clock_authority import NAME as CLOCK_NAME
from actors.clock_authority import ClockAuthority
from actors.edge import Edge
from actors.energy_governor import LadderGovernorActor
from actors.feed import FeedActor
from actors.gateway import GatewayActor
from actors.ledger import NAME as LEDGER_NAME
from actors.ledger import NAMESPACE as LEDGER_NAMESPACE
from actors.ledger import LedgerActor
from actors.packager import Packager
from actors.sender_inbox import SenderInbox
from actors.transcoder import TranscoderPool
from deployments.delivery import build_app
from deployments.ledger import APP_NAME as LEDGER_APP
from deployments.ledger import ROUTE_PREFIX as LEDGER_PREFIX
from deployments.ledger import build_app as build_ledger_app
from deployments.gateway import APP_NAME as GATEWAY_APP
from deployments.gateway import ROUTE_PREFIX as GATEWAY_PREFIX
from deployments.gateway import build_app as build_gateway_app
from orbitcast.clock.config import LOOPBACK_HOST
from orbitcast.config import ConfigError, FeedConfig, OrbitcastConfig, anchored, load_config
from orbitcast.energy.errors import EnergyError
from orbitcast.energy.governor import LadderGovernor
from orbitcast.media.source import listen_address
from orbitcast.sealed_delivery import build_plan
from orbitcast.standby import DEATH_NOTICE_ENV, HOLDING, Standby
from orbitcast.store import Store
from pipelines.local import NAMESPACE, use_local_serve_env

APP_NAME = "orbitcast"


@dataclass
class Pipeline:
    config: OrbitcastConfig
    clock: "ray.actor.ActorHandle"
    edges: list["ray.actor.ActorHandle"]  # the edge, and its standby (config.standby_edge)
    packagers: dict[str, "ray.actor.ActorHandle"]  # the one each feed starts with
    pool: "ray.actor.ActorHandle"
    feeds: dict[str, "ray.actor.ActorHandle"]
    ledger: "ray.actor.ActorHandle | None" = None
    gateway: "ray.actor.ActorHandle | None" = None  # the embedded gateway (None: a remote one)
    inbox: "ray.actor.ActorHandle | None" = None
    governor: "ray.actor.ActorHandle | None" = None  # the site's plan, live (energy.follow_plan)
    standby_packagers: dict[str, "ray.actor.ActorHandle"] = field(default_factory=dict)  # config.standby_packagers
    standby_feeds: dict[str, "ray.actor.ActorHandle"] = field(default_factory=dict)  # config.standby_feeds

    @property
    def edge(self) -> "ray.actor.ActorHandle":
        """The edge that holds now (the first while neither says so)."""
        return _holding(self.edges) or self.edges[0]

    @property
    def url(self) -> str:
        host = self.config.serve.host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{self.config.serve.port}/"

    def packagers_of(self, feed: str) -> list["ray.actor.ActorHandle"]:
        """The feed's packager and its standby: either may be the one publishing now."""
        return [self.packagers[feed], *([self.standby_packagers[feed]] if feed in self.standby_packagers else [])]

    def publishing_packager(self, feed: str) -> "ray.actor.ActorHandle | None":
        """The packager of `feed` that published last (None: neither has yet)."""
        last, index = max((ray.get(h.stats.remote(), timeout=30)["last_publish_at"], i)
                           for i, h in enumerate(self.packagers_of(feed)))
        return self.packagers_of(feed)[index] if last > 0 else None

    def feed_actors_of(self, feed: str) -> list["ray.actor.ActorHandle"]:
        """The feed's reader and its standby: either may hold the feed now."""
        return [self.feeds[feed], *([self.standby_feeds[feed]] if feed in self.standby_feeds else [])]

    def holding_feed_actor(self, feed: str) -> "ray.actor.ActorHandle | None":
        """The FeedActor of `feed` that reads its source now (None: neither says it does)."""
        return _holding(self.feed_actors_of(feed))

    def feed_placement(self, feed: str) -> int | None:
        """The pool member the feed is handed to now (None: not yet)."""
        holder = self.holding_feed_actor(feed)
        return ray.get(holder.placement.remote(), timeout=30) if holder is not None else None

    def flush_catalogs(self) -> None:
        """Every packager's buffered catalog rows, written to the store."""
        ray.get([p.flush.remote() for feed in self.packagers for p in self.packagers_of(feed)])

    def catalog_rows(self, feed: str) -> list[dict]:
        """The catalog as the store holds it, after every packager of `feed` flushed its rows."""
        first, *rest = self.packagers_of(feed)
        ray.get([p.flush.remote() for p in rest])
        return ray.get(first.catalog_rows.remote())

    def wait_playable(self, timeout: float) -> bool:
        """True once some feed has a segment in every rung."""
        deadline = time.monotonic() + timeout
        rungs = len(self.config.ladder.rungs)
        while time.monotonic() < deadline:
            feeds = ray.get(self.edge.feeds.remote())
            if any(len(f["renditions"]) == rungs for f in feeds):
                return True
            time.sleep(0.25)
        return False

    def stop(self, wait_s: float = 10.0) -> None:
        """Stop every part. `ray job stop` sends SIGKILL 3 s after SIGTERM, so what must not be
        left behind comes first: the Serve apps are deleted by the (detached) Serve controller
        once asked, even if this process is killed right after asking."""
        deadline = time.monotonic() + wait_s
        apps = [APP_NAME, GATEWAY_APP] + ([LEDGER_APP] if self.ledger is not None else [])
        for app in apps:
            try:
                serve.delete(app, _blocking=False)
            except Exception:  # noqa: BLE001 - best effort while shutting down
                pass

        def settle(refs: list, limit: float) -> None:
            try:  # all at once, not one timeout per feed
                ray.wait(refs, num_returns=len(refs), timeout=max(0.0, min(limit, deadline - time.monotonic())))
            except Exception:  # noqa: BLE001
                pass

        feeds = [*self.feeds.values(), *self.standby_feeds.values()]
        settle([feed.stop.remote() for feed in feeds], 1.0)
        # the catalog's and the analysis table's buffered rows reach the store before the kill
        packagers = [*self.packagers.values(), *self.standby_packagers.values()]
        settle([*(packager.flush.remote() for packager in packagers), *(e.flush_analysis.remote() for e in self.edges)],
               1.5)
        if self.gateway is not None:
            settle([self.gateway.stop.remote()], 0.5)
        others = [self.gateway, self.inbox, self.governor]
        for handle in [*feeds, self.pool, *packagers, *self.edges, *others]:
            if handle is not None:
                ray.kill(handle, no_restart=True)
        if self.ledger is not None:
            # the packagers are gone: nothing appends now; close the log files cleanly
            settle([self.ledger.close.remote()], 1.0)
            ray.kill(self.ledger, no_restart=True)
        while time.monotonic() < deadline:
            try:
                if not set(apps) & set(serve.status().applications):
                    break
            except Exception:  # noqa: BLE001
                break
            time.sleep(0.1)


def _holding(pair: list["ray.actor.ActorHandle"]) -> "ray.actor.ActorHandle | None":
    """The one of a pair (actors/pair.py) that says it holds; None: neither does now."""
    if len(pair) == 1:
        return pair[0]
    roles = ray.get([h.role.remote() for h in pair], timeout=30)
    return next((h for h, role in zip(pair, roles) if role == HOLDING), None)


def start(config: OrbitcastConfig, on_cluster: bool = False) -> Pipeline:
    """Start every part on the connected Ray cluster; returns as soon as they are placed.
    `on_cluster`: a job on a cluster of its own (not a Ray started here for this pipeline)."""
    config = anchored(config)  # one store and key folder for every actor (config.anchored)
    if config.clock.ntp_host == "auto":
        # the authority may land on any node: 'node' is settled where it runs
        config = config.model_copy(update={"clock": config.clock.model_copy(
            update={"ntp_host": "node" if on_cluster else LOOPBACK_HOST})})
    clock = ClockAuthority.options(name=CLOCK_NAME, get_if_exists=True, lifetime="detached").remote(config.clock, CLOCK_NAME)
    serve.start(http_options={"host": config.serve.host, "port": config.serve.port})
    base_url = f"http://127.0.0.1:{config.serve.port}"
    store = Store(config.store)
    plan = build_plan(config, base_url, blob_store=store.path("threema-blobs"), queue_journal=store.path("threema-queues"))
    # Inside the cluster the embedded gateway is an actor: the packagers and the edge call it,
    # and it hands the edge and the sender's inbox their callbacks by actor calls, in batches.
    # Named, so that a gateway that Ray starts again finds them (its routes die with it).
    edge_name, inbox_name = (f"orbitcast-{part}-{secrets.token_hex(4)}" for part in ("edge", "inbox"))
    # The edge and its standby (actors/pair.py), SPREAD; DEATH_NOTICE_ENV: the standby hears at
    # once that the edge died, and tells the gateway that the callbacks go to it now.
    edge_names = [f"{edge_name}-{i}" for i in range(2)] if config.standby_edge else [edge_name]
    routes = {plan.edge_callback_url: edge_names, plan.sender_callback_url: inbox_name}
    gateway = GatewayActor.remote(plan.gateway, routes) if plan.gateway is not None else None
    if config.standby_edge:
        edges = [Edge.options(name=name, scheduling_strategy="SPREAD", runtime_env={"env_vars": DEATH_NOTICE_ENV})
                 .remote(config, plan.edge_view(), gateway, (i, edge_names[1 - i])) for i, name in enumerate(edge_names)]
    else:
        edges = [Edge.options(name=edge_name).remote(config, plan.edge_view(), gateway)]
    inbox = SenderInbox.options(name=inbox_name).remote(plan.packager_view(), gateway)
    if gateway is not None:
        ray.get(gateway.route.remote({plan.edge_callback_url: edges, plan.sender_callback_url: inbox}))
    try:
        ledger = LedgerActor.options(name=LEDGER_NAME, namespace=LEDGER_NAMESPACE).remote(config, clock)
    except ValueError:  # another pipeline's ledger holds the name: this one works unnamed
        ledger = LedgerActor.remote(config, clock)
    # A feed's packager and its standby on different nodes where there are several (SPREAD), so
    # that a node's loss leaves one of them.
    def packager(feed: str, standby: bool = False) -> "ray.actor.ActorHandle":
        return Packager.options(scheduling_strategy="SPREAD").remote(config, feed, plan.packager_view(), ledger,
                                                                     gateway, standby=standby)

    packagers = {f.name: packager(f.name) for f in config.feeds}
    standbys = {f.name: packager(f.name, standby=True) for f in config.feeds} if config.standby_packagers else {}
    governor = LadderGovernorActor.remote(config) if config.energy.follow_plan.enabled else None
    pool = TranscoderPool.remote(config, {name: Standby([p, *([standbys[name]] if name in standbys else [])])
                                          for name, p in packagers.items()}, governor)
    # The three Serve apps deploy together and in the background (a few seconds each when
    # one after another) while the feeds fill their first segment; the packager waits for the
    # gateway before its first send, and the gateway retries callbacks until the edge answers.
    quiet = {"enable_access_log": False, "log_level": "WARNING"}
    targets = [
        RunTarget(build_app(edges, config, clock, inbox, pool, governor), name=APP_NAME, route_prefix="/", logging_config=quiet),
        RunTarget(build_ledger_app(ledger), name=LEDGER_APP, route_prefix=LEDGER_PREFIX, logging_config=quiet),
    ]
    if gateway is not None:
        targets.append(RunTarget(build_gateway_app(gateway), name=GATEWAY_APP, route_prefix=GATEWAY_PREFIX,
                                 logging_config=quiet))
    serve.run_many(targets, wait_for_ingress_deployment_creation=False, wait_for_applications_running=False)
    # DEATH_NOTICE_ENV: a feed hears at once that its pool member died, and moves to another
    # (with Ray's default grace, 1-2 s later)
    # (and the standby of a feed hears at once that the one reading its source died)
    pair_token = secrets.token_hex(4)

    def pair_name(feed: str, index: int) -> str:  # each of a pair asks the other what it does
        return f"orbitcast-feed-{pair_token}-{feed}-{index}"

    def feed_actor(f: FeedConfig, index: int | None = None) -> "ray.actor.ActorHandle":
        options: dict = {"runtime_env": {"env_vars": DEATH_NOTICE_ENV}}
        if index is not None:
            options |= {"name": pair_name(f.name, index), "scheduling_strategy": "SPREAD"}
        pair = (index, pair_name(f.name, 1 - index)) if index is not None else None
        return FeedActor.options(**options).remote(f, pool, clock, edges, config.segment_duration,
                                                   config.part_duration, pair)

    # A feed that listens for its sender has one reader: a second could not listen on the same
    # address, and the sender must call again either way.
    paired = {f.name for f in config.feeds if config.standby_feeds and listen_address(f.source, f.options) is None}
    feeds = {f.name: feed_actor(f, 0 if f.name in paired else None) for f in config.feeds}
    standby_feeds = {f.name: feed_actor(f, 1) for f in config.feeds if f.name in paired}
    return Pipeline(config, clock, edges, packagers, pool, feeds, ledger, gateway, inbox, governor, standbys,
                    standby_feeds)


def run_until_stopped(pipeline: Pipeline, announce: bool = True) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if announce:
        print(f"orbitcast: viewer at {pipeline.url}", flush=True)
    started = time.monotonic()

    def announce_playable() -> None:
        if pipeline.wait_playable(timeout=120):
            print(f"orbitcast: first segment playable after {time.monotonic() - started:.1f} s: "
                  f"{pipeline.url}live/{pipeline.config.feeds[0].name}/master.m3u8", flush=True)

    threading.Thread(target=announce_playable, daemon=True).start()
    stop.wait()
    print("orbitcast: stopping", flush=True)
    pipeline.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.live", description="Run the orbitcast live pipeline on the Ray cluster at RAY_ADDRESS (or a local one).")
    parser.add_argument("config", help="orbitcast.yaml")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if config.energy.follow_plan.enabled:
            # here, with its reason (no pvlib, a site pvlib refuses), rather than in an actor
            # that Ray would restart again and again
            LadderGovernor(config)
    except (ConfigError, EnergyError) as err:
        print(f"orbitcast: {err}", file=sys.stderr)
        return 2
    # On a cluster its nodes' settings rule; a Ray started here gets the demo's ingress settings.
    use_local_serve_env()
    # A job's driver is handed the cluster's address (RAY_ADDRESS); without one, ray.init
    # starts a Ray of its own on this machine.
    on_cluster = bool(os.environ.get("RAY_ADDRESS"))
    ray.init(namespace=NAMESPACE)
    pipeline = start(config, on_cluster=on_cluster)
    run_until_stopped(pipeline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
