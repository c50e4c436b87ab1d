"""Init segments an edge lacks, found in the archive by the tag a part or segment names.

An init travels once per rung and packager. An edge that Ray started again gets the window back
from the Delivery replicas (rebuild.py), inits included; when they went with it (a node lost
with the edge and every replica), the parts that come next would be listed with no init to
play them with. Each part names its init's tag (`SegmentMeta.init`), and the packager archives
every init before it sends it: the edge opens it from there."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable

RETRY_S = 1.0  # a tag not found is looked up again after this (five parts a second per rung)


class InitFinder:
    """`open_init(feed, rendition, tag)`: the archived init's bytes, None when not there."""

    def __init__(self, open_init: Callable[[str, str, str], bytes | None], retry_s: float = RETRY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._open = open_init
        self._retry_s = retry_s
        self._clock = clock
        self._not_before: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def find(self, feed: str, rendition: str, tag: str) -> bytes | None:
        key = (feed, rendition, tag)
        with self._lock:
            if self._clock() < self._not_before.get(key, 0.0):
                return None
            # one lookup at a time per tag: the parts of a rung come on many threads at once
            self._not_before[key] = self._clock() + self._retry_s
        try:
            data = self._open(feed, rendition, tag)
        except Exception:  # noqa: BLE001 - the store or the gateway still starting: tried again later
            data = None
        self.counters["found" if data is not None else "missing"] += 1
        if data is not None:
            with self._lock:
                self._not_before.pop(key, None)
        return data
