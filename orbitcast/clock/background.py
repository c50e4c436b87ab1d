"""One daemon thread with a stop flag: how the clock's background work (the authority's
ticks, the NTP server's loop, every client's syncs) starts and stops.

Kept in one place so that each of them stops the same way: set the flag, join for a bounded
time (a thread stuck in a slow call must not hang an actor's shutdown), forget the thread.
"""

from __future__ import annotations

import threading
from typing import Callable


class Background:
    """Runs `body(stop)` in a daemon thread named `name` until `stop()` sets `stop`.

    `body` checks the event (or waits on it) between pieces of work.
    """

    def __init__(self, name: str, body: Callable[[threading.Event], None]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=body, args=(self._stop,), name=name,
                                        daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, join_timeout_s: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout=join_timeout_s)


def every(stop: threading.Event, interval_s: float, work: Callable[[], None],
          on_error: Callable[[Exception], None]) -> None:
    """Call `work` every `interval_s` until `stop` is set; an exception goes to `on_error`
    and the loop goes on (a clock whose thread died would silently stop keeping time)."""
    while not stop.wait(interval_s):
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - handed to on_error, never lost
            on_error(exc)
