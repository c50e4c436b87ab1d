"""One process of a pair of actors of which one holds a duty (a feed's source loop, the edge)
and the other stands by: its imports done and its state warm, with a call to the holder in
flight, so that it takes the duty the moment that call fails (a few tens of milliseconds after a
death, with `DEATH_NOTICE_ENV`) instead of after the second Ray takes to start the holder again.

No third party decides which of the two holds: each says its role when asked (`watch`), and the
one Ray starts again asks the other and stands by if the other holds (orbitcast/standby.py
`role_after_restart`, tried over every order of events in tests/unit/test_feed_pair.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import ray

from orbitcast.standby import DECIDING, HOLDING, STANDING_BY, role_after_restart

WATCH_S = 30.0  # how long the standby's call to the holder stays in flight
ASK_S = 10.0  # a question to the other unanswered this much longer is asked again

log = logging.getLogger(__name__)


class PairRole:
    """This process's role. `take(why)` is called once, in the following thread, when this one
    has taken the duty over (the holder at the start does its own start); `prepare()` just before
    the role says so, for what a caller let in by the role must find ready."""

    def __init__(self, index: int, other_name: str, take: Callable[[str], None], restarted: bool, what: str,
                 prepare: Callable[[], None] | None = None) -> None:
        self.index = index
        self.other_name = other_name
        self._take_duty = take
        self._prepare = prepare
        self.what = what  # for the log: "feed iss", "the edge"
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.stopped = False
        if index == 0 and not restarted:
            self.role = HOLDING
        else:
            self.role = STANDING_BY if not restarted else DECIDING
            threading.Thread(target=self._follow, name=f"pair-{what}", daemon=True).start()

    @property
    def holding(self) -> bool:
        return self.role == HOLDING

    def wait_holding(self, timeout: float) -> bool:
        """Whether this one holds the duty, waiting up to `timeout` for it to take it."""
        with self._changed:
            self._changed.wait_for(lambda: self.role == HOLDING or self.stopped, timeout)
            return self.role == HOLDING

    def watch(self, seconds: float) -> str:
        """This one's role: at once, or, while it holds the duty, after `seconds`, so that the
        asker's call is in flight when this process dies."""
        deadline = time.monotonic() + seconds
        while self.role == HOLDING and not self.stopped and time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        return self.role

    def stop(self) -> None:
        with self._changed:
            self.stopped = True
            self._changed.notify_all()

    def _take(self, why: str) -> None:
        with self._changed:
            if self.role == HOLDING or self.stopped:
                return
            if self._prepare is not None:
                self._prepare()
            self.role = HOLDING
        log.warning("%s: %s; this one takes over", self.what, why)
        try:
            self._take_duty(why)
        except Exception:  # noqa: BLE001 - it holds now whatever failed: the failure is logged
            log.exception("%s: taking over", self.what)
        with self._changed:
            self._changed.notify_all()

    def _other(self) -> "ray.actor.ActorHandle":
        while True:
            try:
                return ray.get_actor(self.other_name)
            except ValueError:  # not registered yet (both created together)
                time.sleep(0.1)

    def _follow(self) -> None:
        """Standing by (or started again and deciding): ask the other what it does, until this
        one holds the duty. Standing by, the question stays in flight for as long as the other
        holds: it fails the moment the other dies."""
        # Not retried by Ray on the process it starts again (an actor class may ask that of its
        # calls): the call must fail with the death, that is what the standby waits for.
        watch = self._other().watch.options(max_task_retries=0)
        while not self.stopped:
            wait = WATCH_S if self.role == STANDING_BY else 0.0
            try:
                answer: str | None = ray.get(watch.remote(wait), timeout=wait + ASK_S)
            except ray.exceptions.GetTimeoutError:
                continue  # slow, not dead: ask again
            except ray.exceptions.RayActorError:
                if self.role == STANDING_BY:
                    self._take("the other of its pair died")
                    return
                answer = None
            except Exception:  # noqa: BLE001 - not an answer (a serialization error, Ray shutting down): ask again
                log.warning("%s: asking the other of the pair failed", self.what, exc_info=True)
                time.sleep(1.0)
                continue
            decided = role_after_restart(self.index, answer)
            if decided == HOLDING:
                self._take(f"the other of its pair is {answer or 'gone'}")
                return
            if decided == STANDING_BY:
                with self._changed:
                    if self.role == DECIDING:
                        self.role = STANDING_BY
            else:
                time.sleep(0.1)
