"""Reading a clock against CLOCK_MONOTONIC, to compare clocks of different processes.

All processes of one host share CLOCK_MONOTONIC, so two (monotonic, clock) pairs taken
milliseconds apart in two actors compare their clocks to about a microsecond, without the
round-trip uncertainty of a call between them. Tests and benchmarks use it; nothing stamps
with it.
"""

from __future__ import annotations

import time
from typing import Callable

TRIES = 5


def monotonic_pair(read: Callable[[], float], tries: int = TRIES) -> tuple[float, float]:
    """(CLOCK_MONOTONIC, read()) as if read at the same instant: the middle of the tightest
    bracket of `tries` reads (a read the scheduler interrupted has a wide one)."""
    best: tuple[float, float, float] | None = None
    for _ in range(max(1, tries)):
        m0 = time.monotonic()
        t = read()
        m1 = time.monotonic()
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, (m0 + m1) / 2, t)
    assert best is not None
    return best[1], best[2]
