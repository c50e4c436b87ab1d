"""The named clock authority every stamping actor asks for the time.

Reference for now: the system clock of the node it runs on. Its sync protocol (NTP-style
exchanges, references, the UDP server) comes with the clock issue.
"""

from __future__ import annotations

import time

import ray

NAME = "orbitcast-clock"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class ClockAuthority:
    def now(self) -> float:
        return time.time()

    def exchange(self, t1: float) -> tuple[float, float]:
        """The server half of a four-timestamp exchange: (t2 receive, t3 transmit)."""
        t2 = time.time()
        return t2, time.time()


def clock_offset(authority: "ray.actor.ActorHandle", samples: int = 5) -> float:
    """Offset of the local clock from the authority (add it to time.time()), min-delay sample."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        t1 = time.time()
        t2, t3 = ray.get(authority.exchange.remote(t1))
        t4 = time.time()
        delay = (t4 - t1) - (t3 - t2)
        offset = ((t2 - t1) + (t3 - t4)) / 2
        if best is None or delay < best[0]:
            best = (delay, offset)
    assert best is not None
    return best[1]
