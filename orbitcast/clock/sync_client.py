"""The client half of the four-timestamp exchange, independent of transport.

`ask(t1)` carries t1 to the authority and brings back its receive and transmit times
(t2, t3). Over Ray it is an actor method call; over UDP it is an NTP packet
(`ntp_client.udp_ask`); in tests it is a function over simulated time. The client reads t1
and t4 from the *raw* local clock (see disciplined.py for why) and steers its clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

from .disciplined import ClockStatus, DisciplinedClock
from .filter import Sample
from .ntp_math import offset_delay

if TYPE_CHECKING:
    from .config import ClockConfig


@dataclass(frozen=True)
class AuthorityReply:
    """What the authority answers to one exchange (an NTP mode-4 reply, as plain data)."""

    t2: float  # authority time when the request arrived
    t3: float  # authority time when the reply left
    stratum: int = 1
    leap: int = 0  # 3 = alarm: the authority itself is unsynchronized
    root_delay: float = 0.0
    root_dispersion: float = 0.0
    ref_id: bytes = b"LOCL"


AskResult = Union[AuthorityReply, tuple[float, float]]
Ask = Callable[[float], AskResult]


class ExchangeRejected(ValueError):
    """The reply was received but must not be trusted."""


@dataclass(frozen=True)
class ExchangeResult:
    ok: bool
    offset: float | None = None  # authority minus raw local clock
    delay: float | None = None
    error: str | None = None


class SyncClient:
    """Holds a DisciplinedClock and keeps it in step with an authority.

    A stamping actor holds one, calls `exchange(ask)` every `sync_interval_s`, and stamps
    with `now()`. Failures never raise: they put the clock into holdover, where its error
    bound grows at 15 ppm, until an exchange succeeds again.
    """

    def __init__(self, clock: DisciplinedClock | None = None,
                 max_delay_s: float = 1.0) -> None:
        self.clock = clock if clock is not None else DisciplinedClock()
        # An exchange slower than this says more about a stalled process than about time.
        self.max_delay_s = max_delay_s
        self.rejected = 0

    @classmethod
    def from_config(cls, cfg: "ClockConfig", source: Callable[[], float] | None = None
                    ) -> "SyncClient":
        return client_from_config(cfg, source)

    def now(self) -> float:
        return self.clock.now()

    def status(self) -> ClockStatus:
        return self.clock.status()

    def exchange(self, ask: Ask) -> ExchangeResult:
        raw = self.clock.raw_now
        t1 = raw()
        try:
            reply = ask(t1)
        except Exception as exc:  # any transport failure means "authority away"
            self.clock.mark_failure(f"authority unreachable: {type(exc).__name__}: {exc}")
            return ExchangeResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        t4 = raw()
        try:
            sample = self._sample(t1, reply, t4)
        except ExchangeRejected as exc:
            self.rejected += 1
            self.clock.mark_failure(f"reply rejected: {exc}")
            return ExchangeResult(ok=False, error=str(exc))
        self.clock.add_sample(sample)
        return ExchangeResult(ok=True, offset=sample.offset, delay=sample.delay)

    def _sample(self, t1: float, reply: AskResult, t4: float) -> Sample:
        return to_sample(t1, reply, t4, self.max_delay_s)


def to_sample(t1: float, reply: AskResult, t4: float, max_delay_s: float = 1.0) -> Sample:
    """One exchange as a filter sample (offset: authority minus the local clock that read
    t1 and t4), or ExchangeRejected when the reply must not be trusted."""
    if isinstance(reply, AuthorityReply):
        r = reply
    else:
        try:
            t2, t3 = reply
        except (TypeError, ValueError) as exc:
            raise ExchangeRejected(f"malformed reply {reply!r}") from exc
        r = AuthorityReply(t2=float(t2), t3=float(t3))
    if not all(math.isfinite(x) for x in (r.t2, r.t3, r.root_delay, r.root_dispersion)):
        raise ExchangeRejected("non-finite timestamps")
    if r.leap == 3 or not 1 <= r.stratum <= 15:
        raise ExchangeRejected(f"authority unsynchronized (leap={r.leap}, stratum={r.stratum})")
    if r.t3 < r.t2:
        raise ExchangeRejected("authority transmit precedes its receive")
    ow = offset_delay(t1, r.t2, r.t3, t4)
    if ow.delay > max_delay_s:
        raise ExchangeRejected(f"round trip {ow.delay:.3f}s exceeds {max_delay_s}s")
    return Sample(time=(t1 + t4) / 2.0, offset=ow.offset, delay=max(0.0, ow.delay),
                  root_delay=r.root_delay, root_dispersion=r.root_dispersion)


def least_delay_sample(ask: Ask, local: Callable[[], float], exchanges: int = 5) -> Sample:
    """The offset of `local` from the authority, measured once: the least-delay of a few
    exchanges back to back (its error is at most half its delay). For a process that needs
    an offset now and then; a clock that stamps all the time holds a SyncClient, which keeps
    measuring and holds over. Raises what `ask` raises, or ExchangeRejected when no reply
    could be trusted."""
    if exchanges < 1:
        raise ValueError("at least one exchange")
    best: Sample | None = None
    rejected: ExchangeRejected | None = None
    for _ in range(exchanges):
        t1 = local()
        reply = ask(t1)
        try:
            sample = to_sample(t1, reply, local())
        except ExchangeRejected as exc:
            rejected = exc
            continue
        if best is None or sample.delay < best.delay:
            best = sample
    if best is None:
        assert rejected is not None
        raise rejected
    return best


def client_from_config(cfg: "ClockConfig", source: Callable[[], float] | None = None
                       ) -> SyncClient:
    """A SyncClient with the discipline settings of `cfg` over `source` (the raw local
    clock; inject an offset/drift here in tests)."""
    clock = DisciplinedClock(source, max_slew=cfg.max_slew_ppm * 1e-6,
                             step_forward_s=cfg.step_forward_s,
                             holdover_after_s=cfg.holdover_after_s)
    return SyncClient(clock)
