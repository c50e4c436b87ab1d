"""The edge's lookup of an init by the tag a part names (orbitcast/delivery/init_recovery.py)."""

from __future__ import annotations

import threading

from orbitcast.delivery.init_recovery import InitFinder


class Archive:
    def __init__(self) -> None:
        self.inits: dict[tuple[str, str, str], bytes] = {}
        self.asked: list[tuple[str, str, str]] = []
        self.fail = False

    def init(self, feed: str, rendition: str, tag: str) -> bytes | None:
        self.asked.append((feed, rendition, tag))
        if self.fail:
            raise OSError("the store is not there yet")
        return self.inits.get((feed, rendition, tag))


def test_an_archived_init_is_found_by_its_tag() -> None:
    archive = Archive()
    archive.inits[("iss", "360p", "abc")] = b"ftyp+moov"
    finder = InitFinder(archive.init)
    assert finder.find("iss", "360p", "abc") == b"ftyp+moov"
    assert finder.find("iss", "180p", "abc") is None  # another rung's init is another record
    assert finder.counters == {"found": 1, "missing": 1}


def test_a_tag_not_found_is_asked_again_only_after_a_while() -> None:
    """Five parts a second per rung name it: one store read a second, not one per part."""
    now = [100.0]
    archive = Archive()
    finder = InitFinder(archive.init, retry_s=1.0, clock=lambda: now[0])
    assert finder.find("iss", "360p", "abc") is None
    for _ in range(5):
        now[0] += 0.19
        assert finder.find("iss", "360p", "abc") is None
    assert len(archive.asked) == 1
    archive.inits[("iss", "360p", "abc")] = b"ftyp+moov"
    now[0] += 0.1
    assert finder.find("iss", "360p", "abc") == b"ftyp+moov"
    assert len(archive.asked) == 2


def test_a_failing_store_is_a_miss_not_an_error() -> None:
    now = [0.0]
    archive = Archive()
    archive.inits[("iss", "360p", "abc")] = b"ftyp+moov"
    archive.fail = True
    finder = InitFinder(archive.init, clock=lambda: now[0])
    assert finder.find("iss", "360p", "abc") is None
    archive.fail = False
    now[0] += 1.0
    assert finder.find("iss", "360p", "abc") == b"ftyp+moov"


def test_parts_on_many_threads_cost_one_lookup() -> None:
    gate = threading.Event()
    archive = Archive()

    def slow(feed: str, rendition: str, tag: str) -> bytes | None:
        gate.wait(5)
        return archive.init(feed, rendition, tag)

    finder = InitFinder(slow)
    threads = [threading.Thread(target=finder.find, args=("iss", "360p", "abc")) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert len(archive.asked) == 1
