"""The clock every playtest figure is read on: the clock authority's, through its `/time`
(ISO 8601 UTC, the clock that stamps every segment's program date-time). The offset of this
host's clock is measured once at the start: several requests, the one with the shortest round
trip kept, the server assumed to have read its clock at the midpoint (error at most half that
round trip). Browsers on this host read the same host clock, so one offset serves them too."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import aiohttp


@dataclass(frozen=True)
class AuthorityClock:
    offset_s: float  # authority = host + offset
    rtt_s: float | None  # round trip of the sample kept; None: no authority
    source: str  # the /time URL, or why the host clock is used

    def now(self) -> float:
        """The authority's time now, epoch seconds."""
        return time.time() + self.offset_s


def time_url(url: str) -> str:
    """`/time` on the server that serves `url`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/time", "", ""))


def parse_time(text: str) -> float:
    """ISO 8601 as `/time` answers it -> epoch seconds. ValueError if it is not one."""
    value = text.strip()
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment.timestamp()


def best_offset(samples: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(offset, rtt) from (sent, server time, received) host-clock samples: the sample with the
    smallest round trip, the server's reading taken at its midpoint."""
    if not samples:
        raise ValueError("no clock samples")
    sent, server, received = min(samples, key=lambda s: s[2] - s[0])
    return server - (sent + received) / 2, received - sent


async def measure(http: aiohttp.ClientSession, url: str, samples: int = 8) -> AuthorityClock:
    """The offset against `url`'s `/time`; the host clock (offset 0) when it does not answer
    with a time, said so in `source`."""
    where = time_url(url)
    got: list[tuple[float, float, float]] = []
    reason = ""
    for _ in range(samples):
        sent = time.time()
        try:
            async with http.get(where, timeout=aiohttp.ClientTimeout(total=5)) as r:
                text = await r.text()
                received = time.time()
                if r.status != 200:
                    reason = f"{where} answered {r.status}"
                    break
            got.append((sent, parse_time(text), received))
        except (aiohttp.ClientError, TimeoutError) as err:
            reason = f"{where}: {type(err).__name__}"
            break
        except ValueError:
            reason = f"{where} did not answer an ISO 8601 time"
            break
    if not got:
        return AuthorityClock(0.0, None, f"host clock ({reason})")
    offset, rtt = best_offset(got)
    return AuthorityClock(offset, rtt, where)
