"""The clock every stamping actor holds: an `orbitcast.clock.follower.Follower` (a
`SyncClient` kept in step by a thread, holdover, resync, reports) given its Ray calls to the
ClockAuthority actor.

Not an actor itself: it lives inside the actor that stamps (a feed), so that `now()` is a
local call that costs microseconds and keeps working when the authority is away. What it
adds to the Follower is Ray only: the authority's config, its `exchange` and `where` calls,
this actor's node, and fire-and-forget reports. The transport choice (UDP NTP to the
authority's server where reachable, the Ray call otherwise) is
`orbitcast.clock.transport.Route`.

Tests give it a skewed local clock (offset seconds + drift ppm) to show that it is
disciplined away; production clients use the host's monotonic clock.
"""

from __future__ import annotations

import logging
from typing import Any

import ray

from orbitcast.clock import ClockConfig, SyncClient
from orbitcast.clock.disciplined import TimeSource
from orbitcast.clock.follower import Follower
from orbitcast.clock.skew import local_source
from orbitcast.clock.transport import Mode, Route, check_mode

log = logging.getLogger(__name__)

# How long start() waits for the authority to exist at all (it may be starting beside us).
STARTUP_WAIT_S = 15.0


class StampingClock:
    def __init__(self, authority: "ray.actor.ActorHandle", name: str,
                 config: ClockConfig | None = None, *, skew_offset_s: float = 0.0,
                 skew_drift_ppm: float = 0.0, source: TimeSource | None = None,
                 authority_name: str | None = None, report: bool = True,
                 transport: Mode = "auto") -> None:
        self.authority = authority
        self.transport = check_mode(transport)
        self.name = name
        self.authority_name = authority_name or "clock-authority"
        self._config = config
        self._skew = {"offset_s": skew_offset_s, "drift_ppm": skew_drift_ppm}
        self._source = source
        self._report_enabled = report
        self.follower: Follower | None = None

    @property
    def config(self) -> ClockConfig:
        assert self._config is not None, "start() first"
        return self._config

    @property
    def client(self) -> SyncClient | None:
        return None if self.follower is None else self.follower.client

    def start(self) -> "StampingClock":
        """Sync before handing out any time, then keep syncing in a thread."""
        if self.follower is not None:
            return self
        if self._config is None:
            # One config for the whole cluster: the clients follow the authority's.
            try:
                self._config = ray.get(self.authority.get_config.remote(), timeout=STARTUP_WAIT_S)
            except Exception as exc:  # noqa: BLE001 - absent authority: defaults, hold on
                log.warning("clock %s: no config from the authority (%s); using defaults",
                            self.name, exc)
                self._config = ClockConfig()
        cfg = self.config
        timeout = cfg.exchange_timeout_s
        source = self._source
        if source is None:
            source = local_source(self._skew["offset_s"], self._skew["drift_ppm"])
        route = Route(
            self.transport,
            call=lambda t1: ray.get(self.authority.exchange.remote(t1), timeout=timeout),
            where=lambda: ray.get(self.authority.where.remote(), timeout=timeout),
            my_node_id=ray.get_runtime_context().get_node_id(), timeout_s=timeout)
        skewed = self._source is None and any(v != 0.0 for v in self._skew.values())
        self.follower = Follower(
            self.name, SyncClient.from_config(cfg, source), route,
            sync_interval_s=cfg.sync_interval_s, join_timeout_s=timeout + 1.0,
            authority_name=self.authority_name,
            report=self._report if self._report_enabled else None,
            skew=self._skew if skewed else None).start()
        return self

    def _report(self, entry: dict[str, Any]) -> None:
        # Fire and forget: a report must never hold the stamping actor up.
        self.authority.report.remote(entry)

    def _started(self) -> Follower:
        assert self.follower is not None, "start() first"
        return self.follower

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()

    def now(self) -> float:
        """Disciplined Unix time: in step with the authority, never going back."""
        return self._started().now()

    def probe(self) -> tuple[float, float]:
        """(CLOCK_MONOTONIC, now()) as of one instant (orbitcast/clock/probe.py)."""
        return self._started().probe()

    def status(self) -> dict[str, Any]:
        """This clock's entry for /api/clock."""
        return self._started().status()

    def history(self) -> list[dict[str, Any]]:
        """The last attempts, oldest first (tests, debugging)."""
        return self._started().history()
