"""`GET /metrics` of a Delivery replica: the merged metrics of every replica and actor (from the
metrics hub, actors/metrics_hub.py), and what the status documents say at this moment (feeds,
the embedded gateway, the clocks, energy), in the Prometheus text format (docs/metrics.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from actors.metrics_hub import CALL_TIMEOUT_S, hub_handle, report_forever, source_name
from orbitcast.delivery.http_metrics import ReplicaMetrics
from orbitcast.delivery.replica import ReplicaState
from orbitcast.metrics.energy import energy_families, member_snapshots
from orbitcast.metrics.hub import MetricsHub
from orbitcast.metrics.render import render
from orbitcast.metrics.status import clock_families, feed_families, gateway_families
from orbitcast.metrics.store import MetricStore

log = logging.getLogger(__name__)
STATUS_TIMEOUT_S = 1.0
# the transcoder pool's energy reports and the /api/energy body made from them (cached by the replica)
EnergySource = Callable[[], Awaitable[tuple[list[dict], dict] | None]]


class ReplicaMetricsPage:
    """Records this replica's metrics, reports them to the hub, and answers a scrape."""

    def __init__(self, state: ReplicaState, clock: Any = None, gateway: Any = None,
                 energy: EnergySource | None = None) -> None:
        self.state = state
        self.clock = clock  # the ClockAuthority handle, or None
        self.gateway = gateway  # GatewayHealth (the embedded gateway), or None
        self.energy = energy  # None: no energy accounting and no solar site
        self.metrics = ReplicaMetrics()
        state.on_part_hop = self.metrics.part_hop.observe
        self.source = source_name("delivery")
        self._hub: Any = None
        self._reporter = asyncio.get_running_loop().create_task(report_forever(self.source, self._snapshot))

    def _snapshot(self) -> dict:
        return self.metrics.snapshot(self.state.held, time.time())

    async def _merged(self, relayed: list[tuple[str, dict]]) -> tuple[dict[str, dict], bool]:
        """Every process's families (this one's fresh, and `relayed` on behalf of others: the
        transcoders' energy totals), and whether the hub answered; without the hub, this
        replica's own and the relayed ones."""
        mine = self._snapshot()
        try:
            if self._hub is None:
                self._hub = await asyncio.to_thread(hub_handle)
            if relayed:
                await asyncio.wait_for(asyncio.gather(*(self._hub.report.remote(s, snap) for s, snap in relayed)),
                                       CALL_TIMEOUT_S)
            return await asyncio.wait_for(self._hub.collect.remote(self.source, mine), CALL_TIMEOUT_S), True
        except Exception:  # noqa: BLE001 - restarting: this replica's own figures, and hub_up 0
            log.warning("metrics: the hub did not answer", exc_info=True)
            self._hub = None
            hub = MetricsHub()
            for source, snap in relayed:
                hub.report(source, snap, time.time())
            return hub.collect(self.source, mine, time.time()), False

    async def _clock_status(self) -> dict | None:
        if self.clock is None:
            return None
        try:
            return await asyncio.wait_for(self.clock.status.remote(), STATUS_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - away: orbitcast_clock_up 0
            return None

    async def _energy(self) -> tuple[list[dict], dict | None]:
        if self.energy is None:
            return [], None
        try:
            got = await self.energy()
        except Exception:  # noqa: BLE001 - the pool or the plan away: no energy figures this scrape
            log.warning("metrics: no energy figures", exc_info=True)
            return [], None
        return got if got is not None else ([], None)

    async def text(self) -> bytes:
        (reports, energy), clock = await asyncio.gather(self._energy(), self._clock_status())
        merged, hub_up = await self._merged(member_snapshots(reports, time.time()))
        now = time.time()
        up = MetricStore()
        up.gauge("orbitcast_metrics_hub_up", "1 when the metrics hub answered: totals cover every replica and actor, "
                 "else this replica's own").set(1.0 if hub_up else 0.0)
        groups = [merged, up.snapshot(now)["families"], feed_families(self.state.feeds(), now),
                  energy_families(energy, now)]
        if self.clock is not None:
            groups.append(clock_families(clock, now))
        if self.gateway is not None:
            groups.append(gateway_families(await self.gateway.status(), now))
        return render(*groups)
