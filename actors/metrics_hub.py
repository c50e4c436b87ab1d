"""Where every process's metrics meet: one named actor holding a `MetricsHub`
(orbitcast/metrics/hub.py). Delivery replicas, the edge and the packagers report a snapshot
every REPORT_EVERY_S; the replica that answers `GET /metrics` adds its own fresh one and
renders the merged view, so one scrape URL gives totals over every replica and actor.

Started by the first process that reports (`hub_handle`), detached like the clock authority:
it belongs to no single reporter, so none of their restarts takes the others' counts along.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import ray

from orbitcast.metrics.hub import MetricsHub

log = logging.getLogger(__name__)
NAME = "orbitcast-metrics"
# Named in a namespace of its own: Serve replicas run in jobs other than the pipeline's driver
# (the Serve controller's), and every reporter must find the same hub. One hub per Ray cluster.
NAMESPACE = "orbitcast-metrics"
REPORT_EVERY_S = 2.0
CALL_TIMEOUT_S = 5.0


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class MetricsHubActor:
    def __init__(self) -> None:
        self.hub = MetricsHub(ttl_s=10 * REPORT_EVERY_S)

    def report(self, source: str, snapshot: dict[str, Any]) -> None:
        self.hub.report(source, snapshot, time.time())

    def collect(self, source: str, snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return self.hub.collect(source, snapshot, time.time())

    def merged(self) -> dict[str, dict[str, Any]]:
        return self.hub.merged(time.time())


def hub_handle() -> "ray.actor.ActorHandle":
    """The cluster's hub, started if it is not there yet (blocking: asks the GCS)."""
    for _ in range(5):
        try:
            return MetricsHubActor.options(name=NAME, namespace=NAMESPACE, get_if_exists=True,
                                           lifetime="detached").remote()
        except ValueError:  # another process created it between the look-up and the creation
            time.sleep(0.1)
    return ray.get_actor(NAME, namespace=NAMESPACE)


def source_name(component: str, part: str | None = None) -> str:
    """`component/part`; the part defaults to this process (host:pid)."""
    return f"{component}/{part or f'{socket.gethostname()}:{os.getpid()}'}"


def report_in_thread(source: str, snapshot: Callable[[], dict[str, Any]], every_s: float = REPORT_EVERY_S) -> None:
    """For actors whose methods run on threads: a daemon thread reports every `every_s`."""

    def loop() -> None:
        hub = None
        while True:
            time.sleep(every_s)
            try:
                hub = hub or hub_handle()
                ray.get(hub.report.remote(source, snapshot()), timeout=CALL_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - the hub restarting: the next report goes through
                log.debug("metrics report from %s failed", source, exc_info=True)
                hub = None

    threading.Thread(target=loop, name="metrics-report", daemon=True).start()


async def report_forever(source: str, snapshot: Callable[[], dict[str, Any]], every_s: float = REPORT_EVERY_S) -> None:
    """For a process with an event loop (a Delivery replica): report every `every_s`."""
    hub = None
    while True:
        await asyncio.sleep(every_s)
        try:
            if hub is None:
                hub = await asyncio.to_thread(hub_handle)
            await asyncio.wait_for(hub.report.remote(source, snapshot()), CALL_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.debug("metrics report from %s failed", source, exc_info=True)
            hub = None
