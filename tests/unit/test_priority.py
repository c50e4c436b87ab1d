"""Bulk work gives way: every thread of the process, and those it makes later, run nicer. The
viewer path takes the lead as far as the system allows, and never falls behind where it was."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading

import pytest

from orbitcast.priority import give_way, lowest_allowed, take_lead


def _niceness_of_threads(target: int, out: "mp.Queue[tuple[int, int, int, int]]", first: int = 0,
                         change=give_way) -> None:  # type: ignore[no-untyped-def]
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
    now = change(target)
    release.set()
    t.join(10)
    later: dict[str, int] = {}
    u = threading.Thread(target=lambda: later.setdefault("after", os.getpriority(os.PRIO_PROCESS, 0)))
    u.start()
    u.join(10)
    out.put((start, now, seen["before"], later["after"]))


def _run(target: int, first: int = 0, change=give_way) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=_niceness_of_threads, args=(target, out, first, change))
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


def test_the_viewer_path_takes_the_lead_as_far_as_it_may():
    here = os.getpriority(os.PRIO_PROCESS, 0)
    if here > 10:
        pytest.skip("the test needs room to start the process at a niceness well above its target")
    start, now, before, after = _run(here, first=15 - here, change=take_lead)  # a Ray worker's 15
    assert start == 15
    # root (CI) or a generous RLIMIT_NICE: back to where this test runs; without either: stays
    expected = max(here, lowest_allowed()) if lowest_allowed() < 15 else 15
    assert now == before == after == expected


def test_taking_the_lead_never_raises_niceness():
    here = os.getpriority(os.PRIO_PROCESS, 0)
    if here > 14:
        pytest.skip("the test needs room to start the process above where it runs")
    start, now, before, after = _run(here + 4, first=2, change=take_lead)  # target above where it is
    assert start == here + 2 and now == before == after == start
