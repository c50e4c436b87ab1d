"""The certification ledger's place in the cluster: one actor holding every feed's log.

Thin: `orbitcast.ledger.service.LedgerService` does the work. The actor adds the clock (head
timestamps come from the clock authority, through a measured offset) and a timer thread that
signs a fresh head at least every segment duration, so an idle feed still shows a live log.
Restarted by Ray (`max_restarts`), it reloads every log from the store; calls in flight are
retried (`max_task_retries`), and appends are idempotent, so a retried append is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import ray

from actors.clock_authority import clock_offset
from orbitcast.config import OrbitcastConfig
from orbitcast.ledger.service import LedgerService
from orbitcast.priority import give_way
from orbitcast.vod.names import VOD_PREFIX

log = logging.getLogger(__name__)

NAME = "orbitcast-ledger"
# Named in a namespace of its own, as the metrics hub is: a recording job (pipelines/vod.py,
# a driver in a namespace of its own) certifies its segments in the running pipeline's ledger,
# so its proofs are served where the live feeds' are. One pipeline's ledger per Ray cluster.
NAMESPACE = "orbitcast-ledger"
OFFSET_REFRESH_S = 60.0


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=16)
class LedgerActor:
    def __init__(self, config: OrbitcastConfig, clock: "ray.actor.ActorHandle | None" = None) -> None:
        give_way()  # bulk work: the viewer path runs first (orbitcast/priority.py)
        self.service = LedgerService(
            config.store, [f.name for f in config.feeds], key_path=config.ledger_key,
            # a recording's head is signed with its appends; re-signing it every segment
            # duration would only grow its log
            idle_heads=lambda feed: not feed.startswith(VOD_PREFIX),
        )
        self.clock = clock
        self.offset = 0.0
        self.offset_at = float("-inf")
        self.max_age_ms = int(config.segment_duration * 1000)
        self._refresh_offset()
        self._stop = threading.Event()
        # A quarter of a segment duration between checks: a head is never more than 1.25
        # durations old, and the check itself costs nothing when no head is due.
        self._tick = max(0.05, config.segment_duration / 4)
        threading.Thread(target=self._timer, name="ledger-sign", daemon=True).start()

    def _refresh_offset(self) -> None:
        if self.clock is None:
            return
        try:
            self.offset = clock_offset(self.clock, samples=3)
            self.offset_at = time.monotonic()
        except Exception as e:  # noqa: BLE001 - keep the last offset; never stop signing
            log.warning("ledger: clock authority unreachable, keeping offset %.3f s: %s", self.offset, e)

    def now_ms(self) -> int:
        return int((time.time() + self.offset) * 1000)

    def _timer(self) -> None:
        while not self._stop.wait(self._tick):
            if time.monotonic() - self.offset_at > OFFSET_REFRESH_S:
                self._refresh_offset()
            try:
                self.service.sign_due(self.now_ms(), self.max_age_ms)
            except Exception:  # noqa: BLE001 - a failed signature must not end the timer
                log.exception("ledger: signing failed")

    def append(self, segments: list[Any]) -> list[int | None]:
        """Leaf indices of the segments (None where the log already holds another leaf)."""
        return self.service.append(segments, self.now_ms())

    def sign_due(self, now_ms: int | None = None) -> int:
        """Sign every due head now (the timer does this on its own); returns how many."""
        return len(self.service.sign_due(self.now_ms() if now_ms is None else now_ms, self.max_age_ms))

    def route(self, path: str, query: dict[str, str] | None = None) -> tuple[int, dict, dict]:
        """(status, JSON body, headers) of one GET under /ledger/."""
        return self.service.route(path, query)

    def pubkey(self) -> str:
        return bytes(self.service.verify_key).hex()

    def stats(self) -> dict[str, Any]:
        return self.service.stats()

    def close(self) -> None:
        self._stop.set()
        self.service.close()


def running_ledger() -> "ray.actor.ActorHandle | None":
    """The running pipeline's ledger on this cluster, if there is one."""
    try:
        return ray.get_actor(NAME, namespace=NAMESPACE)
    except ValueError:
        return None
