"""`GET /metrics` of a Delivery replica: the merged metrics of every replica and actor (from the
metrics hub, actors/metrics_hub.py), and what the status documents say at this moment (feeds,
the embedded gateway, the clocks), in the Prometheus text format (docs/metrics.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from actors.metrics_hub import CALL_TIMEOUT_S, hub_handle, report_forever, source_name
from orbitcast.delivery.http_metrics import ReplicaMetrics
from orbitcast.delivery.replica import ReplicaState
from orbitcast.metrics.hub import MetricsHub
from orbitcast.metrics.render import render
from orbitcast.metrics.status import clock_families, feed_families, gateway_families
from orbitcast.metrics.store import MetricStore

log = logging.getLogger(__name__)
STATUS_TIMEOUT_S = 1.0


class ReplicaMetricsPage:
    """Records this replica's metrics, reports them to the hub, and answers a scrape."""

    def __init__(self, state: ReplicaState, clock: Any = None, gateway: Any = None) -> None:
        self.state = state
        self.clock = clock  # the ClockAuthority handle, or None
        self.gateway = gateway  # GatewayHealth (the embedded gateway), or None
        self.metrics = ReplicaMetrics()
        state.on_part_hop = self.metrics.part_hop.observe
        self.source = source_name("delivery")
        self._hub: Any = None
        self._reporter = asyncio.get_running_loop().create_task(report_forever(self.source, self._snapshot))

    def _snapshot(self) -> dict:
        return self.metrics.snapshot(self.state.held, time.time())

    async def _merged(self) -> tuple[dict[str, dict], bool]:
        """Every process's families (this one's fresh), and whether the hub answered; without
        the hub, this replica's own."""
        mine = self._snapshot()
        try:
            if self._hub is None:
                self._hub = await asyncio.to_thread(hub_handle)
            return await asyncio.wait_for(self._hub.collect.remote(self.source, mine), CALL_TIMEOUT_S), True
        except Exception:  # noqa: BLE001 - restarting: this replica's own figures, and hub_up 0
            log.warning("metrics: the hub did not answer", exc_info=True)
            self._hub = None
            return MetricsHub().collect(self.source, mine, time.time()), False

    async def _clock_status(self) -> dict | None:
        if self.clock is None:
            return None
        try:
            return await asyncio.wait_for(self.clock.status.remote(), STATUS_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - away: orbitcast_clock_up 0
            return None

    async def text(self) -> bytes:
        (merged, hub_up), clock = await asyncio.gather(self._merged(), self._clock_status())
        now = time.time()
        up = MetricStore()
        up.gauge("orbitcast_metrics_hub_up", "1 when the metrics hub answered: totals cover every replica and actor, "
                 "else this replica's own").set(1.0 if hub_up else 0.0)
        groups = [merged, up.snapshot(now)["families"], feed_families(self.state.feeds(), now)]
        if self.clock is not None:
            groups.append(clock_families(clock, now))
        if self.gateway is not None:
            groups.append(gateway_families(await self.gateway.status(), now))
        return render(*groups)
