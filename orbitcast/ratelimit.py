"""Limits per client: a token bucket for request rates (the gateway API) and a count of
requests held at once (LL-HLS blocking requests), each answered 429 by its front when over.

Keyed by whatever names a client at that front (an address, an identity). The table of keys is
bounded: the least recently seen client is forgotten first, so a flood of new addresses costs
memory up to `max_clients` and no more.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBuckets:
    """At most `rate` requests a second per key, in bursts of up to `burst`."""

    def __init__(self, rate: float, burst: float, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate above 0 and a burst of at least 1")
        self.rate, self.burst, self.max_clients, self.clock = rate, burst, max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return allowed


class HeldLimit:
    """At most `limit` requests held at once per key (an asyncio front: one thread)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a limit of at least 1")
        self.limit = limit
        self._held: dict[str, int] = {}

    def acquire(self, key: str) -> bool:
        n = self._held.get(key, 0)
        if n >= self.limit:
            return False
        self._held[key] = n + 1
        return True

    def release(self, key: str) -> None:
        n = self._held.get(key, 0) - 1
        if n > 0:
            self._held[key] = n
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)
