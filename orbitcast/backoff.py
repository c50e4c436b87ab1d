"""The wait between retries: exponential, capped, with jitter, counted from the last success.

One per retrying thing (a feed's source, a gateway recipient's callback queue), since it
counts that thing's failures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.1  # +- this fraction, so that retries of many clients do not line up
    attempt: int = 0  # failures since the last success

    def next_delay(self) -> float:
        """The wait before the next try after one more failure."""
        # Stop growing once past the cap: factor**attempt overflows a float after ~1000 tries.
        base = min(self.maximum, self.initial * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return base * (1 + random.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        """A success: the next failure waits `initial` again."""
        self.attempt = 0
