"""Bulk work gives way: every thread of the process, and those it makes later, run nicer."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading

import pytest

from orbitcast.priority import give_way


def _niceness_of_threads(target: int, out: "mp.Queue[tuple[int, int, int, int]]", first: int = 0) -> None:
    os.nice(first)  # where the process starts (a Ray worker: 15)
    started = threading.Event()
    release = threading.Event()
    seen: dict[str, int] = {}

    def before() -> None:  # made before give_way, as a Ray actor's method threads are
        started.set()
        release.wait(10)
        seen["before"] = os.getpriority(os.PRIO_PROCESS, 0)

    t = threading.Thread(target=before)
    t.start()
    started.wait(10)
    start = os.getpriority(os.PRIO_PROCESS, 0)
    now = give_way(target)
    release.set()
    t.join(10)
    later: dict[str, int] = {}
    u = threading.Thread(target=lambda: later.setdefault("after", os.getpriority(os.PRIO_PROCESS, 0)))
    u.start()
    u.join(10)
    out.put((start, now, seen["before"], later["after"]))


def _run(target: int, first: int = 0) -> tuple[int, int, int, int]:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=_niceness_of_threads, args=(target, out, first))
    p.start()
    result = out.get(timeout=20)
    p.join(20)
    return result


def test_every_thread_and_later_ones_run_at_the_target():
    if os.getpriority(os.PRIO_PROCESS, 0) >= 19:
        pytest.skip("the test runs at the lowest priority already")
    start, now, before, after = _run(19)
    assert start < 19
    assert (now, before, after) == (19, 19, 19)


def test_never_lowers_niceness():
    if os.getpriority(os.PRIO_PROCESS, 0) > 14:
        pytest.skip("the test needs room to start the process at a niceness above its target")
    start, now, before, after = _run(os.getpriority(os.PRIO_PROCESS, 0) + 2, first=4)  # target below where it is
    assert start == os.getpriority(os.PRIO_PROCESS, 0) + 4
    assert now == before == after == start
