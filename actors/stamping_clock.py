"""The clock every stamping actor holds: a `SyncClient` kept in step with the ClockAuthority
actor by a background thread.

Not an actor itself: it lives inside the actor that stamps (a feed, the ledger), so that
`now()` is a local call that costs microseconds and keeps working when the authority is away.

- `start()` exchanges with the authority before anything can read the time (the first
  good sample steps the clock onto the authority for free, since nobody has seen the old
  time), then a thread exchanges every `sync_interval_s`.
- Every failure (actor dead, restarting, too slow: exceptions or timeouts) puts the clock in
  holdover: it keeps running on its fitted frequency and its error bound grows at 15 ppm.
  The next good exchange resyncs it, slewing, never stepping back.
- After every attempt it reports its status to the authority's registry (/api/clock).
- Transport (orbitcast/clock/transport.py): UDP NTP to the authority's server when this
  actor can reach it (an order of magnitude less path asymmetry than a Ray call), the Ray
  `exchange` call otherwise. After repeated failures it asks the authority where it is
  again (a restart may move it or its port), and falls back to Ray if UDP alone is failing.
- Tests give it a skewed local clock (offset seconds + drift ppm) to show that it is
  disciplined away; production clients use the host's monotonic clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from typing import Literal

import ray

from orbitcast.clock import ClockConfig, NTPError, SyncClient, UDPAsk
from orbitcast.clock.disciplined import TimeSource
from orbitcast.clock.registry import client_entry, client_reference
from orbitcast.clock.skew import local_source
from orbitcast.clock.sync_client import ExchangeResult
from orbitcast.clock.transport import ntp_target

log = logging.getLogger(__name__)

# How long start() waits for the authority to exist at all (it may be starting beside us).
STARTUP_WAIT_S = 15.0
# Exchanges taken back to back at start, so the min-delay filter has a choice at once
# (chrony's iburst); the first Ray call to an actor is often the slowest.
INITIAL_BURST = 4
BURST_SPACING_S = 0.02
HISTORY = 512
PROBE_TRIES = 5
# Consecutive failures before the client asks the authority where it is again.
REFRESH_AFTER_FAILURES = 3

Transport = Literal["auto", "udp", "ray"]


class StampingClock:
    def __init__(self, authority: "ray.actor.ActorHandle", name: str,
                 config: ClockConfig | None = None, *, skew_offset_s: float = 0.0,
                 skew_drift_ppm: float = 0.0, source: TimeSource | None = None,
                 authority_name: str | None = None, report: bool = True,
                 transport: Transport = "auto") -> None:
        if transport not in ("auto", "udp", "ray"):
            raise ValueError(f"transport must be auto, udp or ray, not {transport!r}")
        self.authority = authority
        self.transport = transport
        self._udp: UDPAsk | None = None
        self._udp_failing = False
        self._consecutive_failures = 0
        self.name = name
        self.authority_name = authority_name or "clock-authority"
        self._config = config
        self._skew = {"offset_s": skew_offset_s, "drift_ppm": skew_drift_ppm}
        self._source = source
        self._report_enabled = report
        self.client: SyncClient | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._exchanges = 0
        self._ref_state = ("unsynced", "not asked yet")
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY)

    # -- life cycle ---------------------------------------------------------------------
    @property
    def config(self) -> ClockConfig:
        assert self._config is not None, "start() first"
        return self._config

    def start(self) -> "StampingClock":
        """Sync before handing out any time, then keep syncing in a thread."""
        if self.client is not None:
            return self
        if self._config is None:
            # One config for the whole cluster: the clients follow the authority's.
            try:
                self._config = ray.get(self.authority.get_config.remote(), timeout=STARTUP_WAIT_S)
            except Exception as exc:  # noqa: BLE001 - absent authority: defaults, hold on
                log.warning("clock %s: no config from the authority (%s); using defaults",
                            self.name, exc)
                self._config = ClockConfig()
        source = self._source
        if source is None:
            source = local_source(self._skew["offset_s"], self._skew["drift_ppm"])
        self.client = SyncClient.from_config(self.config, source)
        self._locate()
        for i in range(INITIAL_BURST):
            if i:
                time.sleep(BURST_SPACING_S)
            self.sync_once()
        self._thread = threading.Thread(target=self._run, name=f"clock-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.exchange_timeout_s + 1.0)
            self._thread = None
        self._close_udp()

    def _close_udp(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    def _run(self) -> None:
        while not self._stop.wait(self.config.sync_interval_s):
            try:
                self.sync_once()
            except Exception:  # noqa: BLE001 - the thread must outlive any surprise
                log.exception("clock %s: sync failed unexpectedly", self.name)

    # -- one exchange ---------------------------------------------------------------------
    def _locate(self) -> bool:
        """Ask the authority where it serves NTP and pick the transport; False if it did
        not answer (the current transport is kept)."""
        if self.transport == "ray":
            return True
        try:
            where = ray.get(self.authority.where.remote(), timeout=self.config.exchange_timeout_s)
        except Exception:  # noqa: BLE001 - away: keep what we have, try again later
            return False
        target = ntp_target(where, ray.get_runtime_context().get_node_id())
        if self.transport == "auto" and self._udp_failing:
            target = None  # the authority answers over Ray while UDP alone fails: use Ray
        if target is None:
            self._close_udp()
        elif self._udp is None or self._udp.address != target:
            self._close_udp()
            try:
                self._udp = UDPAsk(target[0], target[1], timeout=self.config.exchange_timeout_s)
            except OSError:
                self._udp = None
        return True

    @property
    def transport_in_use(self) -> str:
        if self._udp is not None:
            return f"udp {self._udp.address[0]}:{self._udp.address[1]}"
        return "udp (no server found)" if self.transport == "udp" else "ray"

    def _ask(self, t1: float) -> Any:
        # A timeout is how a restarting authority shows up (calls wait for it, datagrams go
        # unanswered); an exception is how a dead one does. SyncClient turns both into
        # holdover.
        if self._udp is not None:
            return self._udp(t1)
        if self.transport == "udp":
            raise NTPError("no reachable NTP server on the authority")
        return ray.get(self.authority.exchange.remote(t1), timeout=self.config.exchange_timeout_s)

    def sync_once(self) -> ExchangeResult:
        client = self.client
        assert client is not None, "start() first"
        rejected_before = client.rejected
        res = client.exchange(self._ask)
        if res.ok:
            self._consecutive_failures = 0
        else:
            self._consecutive_failures += 1
            if (self._consecutive_failures % REFRESH_AFTER_FAILURES == 0 and self._locate()
                    and self._udp is not None):
                # The authority answers over Ray again (maybe restarted elsewhere, on another
                # port): try its server at once. If the datagram still goes unanswered, the
                # UDP path is what is broken (a firewall): fall back to Ray.
                retry = client.exchange(self._ask)
                if retry.ok:
                    res = retry
                    self._consecutive_failures = 0
                elif self.transport == "auto":
                    self._udp_failing = True
                    self._locate()
        with self._lock:
            self._exchanges += 1
            if res.ok:
                self._ref_state = ("ok", "answering")
            elif client.rejected > rejected_before:
                self._ref_state = ("rejected", res.error or "reply rejected")
            else:
                self._ref_state = ("away", res.error or "no answer")
        st = client.status()
        self._history.append({"at": client.now(), "ok": res.ok, "state": st.state.value,
                              "error_bound_s": st.error_bound_s, "offset_s": res.offset,
                              "delay_s": res.delay, "error": res.error})
        if self._report_enabled:
            try:
                # Fire and forget: a report must never hold the stamping actor up.
                self.authority.report.remote(self.status())
            except Exception:  # noqa: BLE001 - the authority is away; next time
                pass
        return res

    # -- reading --------------------------------------------------------------------------
    def now(self) -> float:
        """Disciplined Unix time: in step with the authority, never going back."""
        assert self.client is not None, "start() first"
        return self.client.now()

    def probe(self) -> tuple[float, float]:
        """(CLOCK_MONOTONIC, now()) back to back; see ClockAuthority.probe."""
        best: tuple[float, float, float] | None = None
        for _ in range(PROBE_TRIES):
            # A read that the scheduler interrupted has a wide bracket: keep the tightest.
            m0 = time.monotonic()
            t = self.now()
            m1 = time.monotonic()
            if best is None or m1 - m0 < best[0]:
                best = (m1 - m0, (m0 + m1) / 2, t)
        assert best is not None
        return best[1], best[2]

    def status(self) -> dict[str, Any]:
        """This clock's entry for /api/clock."""
        assert self.client is not None, "start() first"
        with self._lock:
            state, reason = self._ref_state
            exchanges = self._exchanges
        skewed = self._source is None and any(v != 0.0 for v in self._skew.values())
        entry = client_entry(self.name, self.client.status(),
                             client_reference(self.authority_name, state, reason),
                             exchanges=exchanges, skew=self._skew if skewed else None)
        entry["transport"] = self.transport_in_use
        return entry

    def history(self) -> list[dict[str, Any]]:
        """The last attempts, oldest first: when, ok, state, error bound (tests, debugging)."""
        return list(self._history)
