"""The clock authority, without Ray: a disciplined clock steered by one reference, the
answer to an exchange, and an optional UDP NTP server for hosts outside Ray.

The `ClockAuthority` actor holds one `ClockAuthority` object, calls `start()` once, and
forwards `answer(t1)` for every client exchange.
"""

from __future__ import annotations

import threading
from typing import Any

from .background import Background, every
from .config import LOOPBACK_HOST, ClockConfig, ntp_bind_host
from .disciplined import ClockState, DisciplinedClock, TimeSource
from .iso import format_iso_ms
from .ntp_packet import LEAP_ALARM, LEAP_NONE, STRATUM_UNSYNC
from .ntp_server import NTPServer, ServerInfo
from .references import Reference, ReferenceState, build_reference
from .sync_client import AuthorityReply


class ClockAuthority:
    def __init__(self, reference: Reference, clock: DisciplinedClock, *,
                 tick_interval_s: float = 1.0) -> None:
        self.reference = reference
        self.clock = clock
        self.tick_interval_s = tick_interval_s
        self.ntp_server: NTPServer | None = None
        self._ticking: Background | None = None
        self._cfg: ClockConfig | None = None

    @classmethod
    def from_config(cls, cfg: ClockConfig, source: TimeSource | None = None) -> "ClockAuthority":
        """`source` is the raw local clock (default: monotonic, aligned once to Unix time)."""
        clock = DisciplinedClock(source, max_slew=cfg.max_slew_ppm * 1e-6,
                                 step_forward_s=cfg.step_forward_s,
                                 holdover_after_s=cfg.holdover_after_s)
        ref = build_reference(cfg, clock.raw_now)
        auth = cls(ref, clock, tick_interval_s=cfg.tick_interval_s)
        auth._cfg = cfg
        return auth

    # -- running -------------------------------------------------------------------------
    def tick(self) -> None:
        """Move the reference's trusted samples into the clock; hold over if it has none
        and is not ok (silent or jumped)."""
        samples = self.reference.collect()
        for s in samples:
            self.clock.add_sample(s)
        if not samples:
            st = self.reference.status()
            if st.state is not ReferenceState.OK:
                self.clock.mark_failure(f"reference {st.state.value}: {st.reason}")

    def start(self, serve_ntp: bool | None = None) -> "ClockAuthority":
        """Start the reference, take a first reading, keep ticking in a thread, and (by
        config) serve NTP on UDP."""
        self.reference.start()
        self.tick()
        if self._ticking is None:
            self._ticking = Background("clock-authority", self._run)
        if serve_ntp is None:
            serve_ntp = self._cfg.ntp_serve if self._cfg is not None else False
        if serve_ntp:
            cfg = self._cfg or ClockConfig()
            # outside a cluster the node's address is this machine's loopback
            self.start_ntp_server(ntp_bind_host(cfg.ntp_host, LOOPBACK_HOST, False), cfg.ntp_port)
        return self

    def _run(self, stop: threading.Event) -> None:
        # A broken reference must not stop the clock: it holds over and says why.
        every(stop, self.tick_interval_s, self.tick, lambda exc: self.clock.mark_failure(
            f"reference error: {type(exc).__name__}: {exc}"))

    def start_ntp_server(self, host: str = "127.0.0.1", port: int = 1123) -> NTPServer:
        if self.ntp_server is None:
            self.ntp_server = NTPServer(self.clock.now, host=host, port=port,
                                        info=self.server_info).start()
        return self.ntp_server

    def stop(self) -> None:
        if self._ticking is not None:
            self._ticking.stop()
            self._ticking = None
        if self.ntp_server is not None:
            self.ntp_server.stop()
            self.ntp_server = None
        self.reference.stop()

    # -- answering -----------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def iso_now(self) -> str:
        """Body of GET /time."""
        return format_iso_ms(self.clock.now())

    def server_info(self) -> ServerInfo:
        """Stratum, leap and root distance as this authority advertises them now."""
        if self.clock.state is ClockState.UNSYNCED:
            return ServerInfo(stratum=STRATUM_UNSYNC, ref_id=b"INIT", leap=LEAP_ALARM)
        root_delay = self.clock.root_delay()
        bound = self.clock.error_bound() or 0.0
        # root distance = root_delay/2 + root_dispersion must equal our error bound, so a
        # client adding its own bound to ours gets a bound that still holds.
        return ServerInfo(stratum=self.reference.stratum, ref_id=self.reference.ref_id,
                          leap=LEAP_NONE, root_delay=root_delay,
                          root_dispersion=max(0.0, bound - root_delay / 2),
                          ref_time=self.clock.status().last_sync)

    def answer(self, t1: float | None = None) -> AuthorityReply:
        """One exchange: the authority's receive (t2) and transmit (t3) times plus what it
        says about itself. `t1` is not needed to answer (the client keeps it) and is
        accepted so the call mirrors NTP."""
        t2 = self.clock.now()
        info = self.server_info()
        t3 = self.clock.now()
        return AuthorityReply(t2=t2, t3=t3, stratum=info.stratum, leap=info.leap,
                              root_delay=info.root_delay,
                              root_dispersion=info.root_dispersion, ref_id=info.ref_id)

    def status(self) -> dict[str, Any]:
        """For /api/clock: the authority's own clock and its reference."""
        out: dict[str, Any] = {"clock": self.clock.status().to_dict(),
                               "reference": self.reference.status().to_dict()}
        if self.ntp_server is not None:
            s = self.ntp_server
            out["ntp_server"] = {"host": s.host, "port": s.port, "requests": s.requests,
                                 "replies": s.replies, "malformed": s.malformed}
        return out
