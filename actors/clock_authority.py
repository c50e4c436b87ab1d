"""The named clock authority every stamping actor keeps in step with.

A thin Ray shell around `orbitcast.clock.ClockAuthority` (the reference, the disciplined
clock, the UDP NTP server, all configured by `ClockConfig`) and a `ClockRegistry` where the
stamping actors report their clock status for `GET /api/clock`.

Restartable: Ray restarts it (max_restarts=-1) with the same constructor arguments, so the
same config, reference and NTP port come back. Nothing it holds needs to survive: its clock
re-reads the reference, and the registry refills from the next reports. While it is away the
clients hold over on their own disciplined clocks (actors/stamping_clock.py).
"""

from __future__ import annotations

import time
from typing import Any

import ray

from orbitcast.clock import ClockAuthority as CoreAuthority
from orbitcast.clock import ClockConfig
from orbitcast.clock.config import ntp_bind_host
from orbitcast.clock.probe import monotonic_pair
from orbitcast.clock.registry import ClockRegistry, authority_entry
from orbitcast.clock.sync_client import AuthorityReply, least_delay_sample

NAME = "orbitcast-clock"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ClockAuthority:
    def __init__(self, config: ClockConfig | None = None, name: str = NAME) -> None:
        self.config = config if config is not None else ClockConfig()
        self.name = name
        self.core = CoreAuthority.from_config(self.config)
        # The reference and its tick thread first, the NTP server apart: a port that is
        # taken must cost the outside hosts their server, not every actor its clock.
        self.core.start(serve_ntp=False)
        self.ntp_error: str | None = None
        if self.config.ntp_serve:
            # 'auto' was settled by the pipeline (orbitcast.clock.config.ntp_bind_host)
            host = ntp_bind_host(self.config.ntp_host, ray.util.get_node_ip_address(), False)
            try:
                self.core.start_ntp_server(host, self.config.ntp_port)
            except OSError as exc:
                self.ntp_error = f"cannot bind {host}:{self.config.ntp_port}: {exc.strerror or exc}"
        # A client syncing every sync_interval_s that missed three reports is worth flagging.
        self.registry = ClockRegistry(stale_after_s=max(5.0, 3 * self.config.sync_interval_s))
        self.started_at = self.core.now()

    # -- time --------------------------------------------------------------------------
    def now(self) -> float:
        return self.core.now()

    def iso_now(self) -> str:
        """ISO 8601 UTC with milliseconds: the body of GET /time."""
        return self.core.iso_now()

    # An answer is only worth its t2/t3 if it arrives at once: a retried call after a restart
    # would come back seconds late, so the client's timeout (holdover) is the right outcome.
    @ray.method(max_task_retries=0)
    def exchange(self, t1: float | None = None) -> AuthorityReply:
        """The server half of the four-timestamp exchange (t2, t3 and what it says of
        itself: stratum, leap, root delay and dispersion)."""
        return self.core.answer(t1)

    def probe(self) -> tuple[float, float]:
        """(CLOCK_MONOTONIC, authority time) as of one instant, for tests and the benchmark
        (orbitcast/clock/probe.py says why)."""
        return monotonic_pair(self.core.now)

    # -- configuration and status ------------------------------------------------------
    def get_config(self) -> ClockConfig:
        """Clients take their sync interval and discipline settings from here."""
        return self.config

    def ntp_address(self) -> tuple[str, int] | None:
        server = self.core.ntp_server
        return None if server is None else (server.host, server.port)

    def where(self) -> dict[str, Any]:
        """Where this incarnation runs and serves NTP, for a client choosing its transport
        (orbitcast.clock.transport.ntp_target); it can change when Ray restarts us."""
        ctx = ray.get_runtime_context()
        return {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "ntp": self.ntp_address()}

    def report(self, entry: dict[str, Any]) -> None:
        """A stamping actor's entry for /api/clock (fire and forget)."""
        self.registry.report(entry, received=self.core.now())

    def forget(self, name: str) -> None:
        self.registry.forget(name)

    def status(self) -> dict[str, Any]:
        """The body of GET /api/clock."""
        now = self.core.now()
        core = self.core.status()
        me = authority_entry(self.name, core)
        me["stratum"] = self.core.server_info().stratum
        me["up_s"] = now - self.started_at
        if self.ntp_error is not None:
            me["ntp_server"] = {"error": self.ntp_error}
        return {"now": now, "now_iso": self.core.iso_now(), "authority": me,
                "actors": self.registry.snapshot(now)}


def clock_offset(authority: "ray.actor.ActorHandle", samples: int = 5) -> float:
    """Offset of the local time.time() from the authority, from the least-delay of a few
    exchanges (orbitcast.clock.sync_client.least_delay_sample). Kept for actors that stamp
    rarely; stamping actors hold a StampingClock (actors/stamping_clock.py), which keeps
    syncing and holds over when the authority is away.
    """
    return least_delay_sample(lambda t1: ray.get(authority.exchange.remote(t1)), time.time,
                              samples).offset
