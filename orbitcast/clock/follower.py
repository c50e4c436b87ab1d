"""A clock kept in step with the authority by a thread: what every stamping actor holds
(through actors/stamping_clock.py, which hands it the Ray calls), so that `now()` is a local
call that costs microseconds and keeps working when the authority is away.

- `start()` exchanges with the authority before anything can read the time (the first good
  sample steps the clock onto the authority for free, since nobody has seen the old time),
  then a thread exchanges every `sync_interval_s`.
- Every failure (authority dead, restarting, too slow: exceptions or timeouts) puts the
  clock in holdover: it keeps running on its fitted frequency and its error bound grows at
  15 ppm. The next good exchange resyncs it, slewing, never stepping back.
- The exchanges go along a `Route` (transport.py): UDP NTP or the actor call.
- After every attempt it reports its entry for /api/clock (registry.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Mapping

from .background import Background, every
from .probe import monotonic_pair
from .registry import client_entry, client_reference
from .sync_client import ExchangeResult, SyncClient
from .transport import Route

log = logging.getLogger(__name__)

# Exchanges taken back to back at start, so the min-delay filter has a choice at once
# (chrony's iburst); the first call to an actor is often the slowest.
INITIAL_BURST = 4
BURST_SPACING_S = 0.02
HISTORY = 512


class Follower:
    def __init__(self, name: str, client: SyncClient, route: Route, *,
                 sync_interval_s: float, join_timeout_s: float = 2.0,
                 authority_name: str = "clock-authority",
                 report: Callable[[dict[str, Any]], None] | None = None,
                 skew: Mapping[str, float] | None = None) -> None:
        self.name = name
        self.client = client
        self.route = route
        self.sync_interval_s = sync_interval_s
        self.join_timeout_s = join_timeout_s
        self.authority_name = authority_name
        self._report = report
        # An injected error (tests, simulations), shown in /api/clock so that nobody takes
        # it for a broken host.
        self.skew = dict(skew) if skew else None
        self._lock = threading.Lock()
        self._exchanges = 0
        self._ref_state = ("unsynced", "not asked yet")
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._syncing: Background | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> "Follower":
        """Sync before handing out any time, then keep syncing in a thread."""
        if self._syncing is not None:
            return self
        self.route.locate()
        for i in range(INITIAL_BURST):
            if i:
                time.sleep(BURST_SPACING_S)
            self.sync_once()
        self._syncing = Background(f"clock-{self.name}", self._run)
        return self

    def _run(self, stop: threading.Event) -> None:
        # The thread must outlive any surprise: a clock that stops syncing drifts silently.
        every(stop, self.sync_interval_s, self.sync_once,
              lambda exc: log.error("clock %s: sync failed unexpectedly", self.name,
                                    exc_info=exc))

    def stop(self) -> None:
        if self._syncing is not None:
            self._syncing.stop(self.join_timeout_s)
            self._syncing = None
        self.route.close()

    # -- one exchange ---------------------------------------------------------------------
    def sync_once(self) -> ExchangeResult:
        rejected_before = self.client.rejected
        res = self.route.exchange(self.client)
        with self._lock:
            self._exchanges += 1
            if res.ok:
                self._ref_state = ("ok", "answering")
            elif self.client.rejected > rejected_before:
                self._ref_state = ("rejected", res.error or "reply rejected")
            else:
                self._ref_state = ("away", res.error or "no answer")
        st = self.client.status()
        self._history.append({"at": self.client.now(), "ok": res.ok, "state": st.state.value,
                              "error_bound_s": st.error_bound_s,
                              "slew_remaining_s": st.slew_remaining_s, "offset_s": res.offset,
                              "delay_s": res.delay, "error": res.error})
        if self._report is not None:
            try:
                self._report(self.status())
            except Exception:  # noqa: BLE001 - a report must never hold the clock up
                pass
        return res

    # -- reading --------------------------------------------------------------------------
    def now(self) -> float:
        """Disciplined Unix time: in step with the authority, never going back."""
        return self.client.now()

    def probe(self) -> tuple[float, float]:
        """(CLOCK_MONOTONIC, now()) as of one instant; see probe.py."""
        return monotonic_pair(self.client.now)

    def status(self) -> dict[str, Any]:
        """This clock's entry for /api/clock."""
        with self._lock:
            state, reason = self._ref_state
            exchanges = self._exchanges
        entry = client_entry(self.name, self.client.status(),
                             client_reference(self.authority_name, state, reason),
                             exchanges=exchanges, skew=self.skew)
        entry["transport"] = self.route.describe()
        return entry

    def history(self) -> list[dict[str, Any]]:
        """The last attempts, oldest first: when, ok, state, error bound (tests, debugging)."""
        return list(self._history)
