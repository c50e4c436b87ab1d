"""RFC 5905 on-wire arithmetic and NTP timestamp formats.

Kept apart from the packet codec so that the four-timestamp math can be reused by any
transport (a Ray actor call carries plain floats, the UDP server carries NTP timestamps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Seconds from the NTP prime epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_DELTA = 2_208_988_800
# Era 0 ends on 2036-02-07; an NTP 64-bit timestamp holds 32 bits of seconds.
_ERA_SECONDS = 1 << 32
_FRAC = 1 << 32
_SHORT_FRAC = 1 << 16


@dataclass(frozen=True)
class OnWire:
    """Offset and round-trip delay computed from one exchange.

    offset > 0 means the server (authority) is ahead of the client's clock.
    """

    offset: float
    delay: float


def offset_delay(t1: float, t2: float, t3: float, t4: float) -> OnWire:
    """RFC 5905 section 8: t1 client transmit, t2 server receive, t3 server transmit,
    t4 client receive (t1, t4 on the client's clock; t2, t3 on the server's).

    The offset assumes the path is symmetric; its error is at most delay / 2, which is why
    the filter trusts the sample with the least delay.
    """
    offset = ((t2 - t1) + (t3 - t4)) / 2.0
    delay = (t4 - t1) - (t3 - t2)
    return OnWire(offset=offset, delay=delay)


def unix_to_ntp(t: float) -> int:
    """Unix seconds -> 64-bit NTP timestamp (era 0: 32 bits of seconds, 32 of fraction)."""
    if not math.isfinite(t):
        raise ValueError(f"not a finite time: {t!r}")
    ntp = t + NTP_UNIX_DELTA
    if not 0 <= ntp < _ERA_SECONDS:
        raise ValueError(f"time {t!r} is outside NTP era 0")
    seconds = int(ntp)
    frac = int(round((ntp - seconds) * _FRAC))
    if frac == _FRAC:  # rounding carried into the next second
        seconds, frac = seconds + 1, 0
        if seconds >= _ERA_SECONDS:
            raise ValueError(f"time {t!r} is outside NTP era 0")
    return (seconds << 32) | frac


def ntp_to_unix(ntp: int) -> float:
    """64-bit NTP timestamp (era 0) -> Unix seconds."""
    if not 0 <= ntp < (1 << 64):
        raise ValueError(f"not a 64-bit NTP timestamp: {ntp!r}")
    return (ntp >> 32) - NTP_UNIX_DELTA + (ntp & 0xFFFF_FFFF) / _FRAC


def seconds_to_short(s: float) -> int:
    """Seconds -> NTP short format (unsigned 16.16), used for root delay and dispersion.

    Saturates rather than failing: a huge dispersion is still a truthful "do not trust me".
    """
    if math.isnan(s) or s < 0:
        raise ValueError(f"short format holds only non-negative seconds: {s!r}")
    return min(int(round(s * _SHORT_FRAC)), 0xFFFF_FFFF)


def short_to_seconds(v: int) -> float:
    if not 0 <= v <= 0xFFFF_FFFF:
        raise ValueError(f"not a 32-bit short-format value: {v!r}")
    return v / _SHORT_FRAC
