"""A Delivery replica's copy of the window: batches from the edge wake exactly the requests that
wait on the rendition they change; waits end at their bound; nothing needs a thread."""

from __future__ import annotations

import asyncio
import time

from orbitcast.delivery.blocking import Readiness
from orbitcast.delivery.replica import ReplicaState
from orbitcast.delivery.updates import Batch
from orbitcast.delivery.window import InitUpdate, PartUpdate
from tests.unit.test_window import POLICY, info, part


def batch(version: int, *updates: object, snapshot: bool = False) -> Batch:
    return Batch("edge-1", version, list(updates), snapshot, {"iss": {"feed": "iss", "state": "live"}})


def test_held_requests_wake_when_their_part_arrives_and_only_then() -> None:
    async def scenario() -> None:
        state = ReplicaState(POLICY)
        w = state.window
        state.apply(batch(3, InitUpdate("iss", info("360p"), b"i360"), InitUpdate("iss", info("240p"), b"i240"),
                          PartUpdate(part(10, 0)), snapshot=True))
        assert w.playlist_ready("iss", "360p", 10, 1) is Readiness.WAIT
        held = [asyncio.create_task(state.wait_until("iss", "360p", lambda: w.playlist_ready("iss", "360p", 10, 1), 5.0))
                for _ in range(500)]
        await asyncio.sleep(0.05)
        assert state.held == 500 and state.held_by_feed == {"iss": 500}
        state.apply(batch(4, PartUpdate(part(10, 0, rendition="240p"))))  # another rendition: nobody wakes
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in held)
        arrived = time.perf_counter()
        state.apply(batch(5, PartUpdate(part(10, 1))))
        results = await asyncio.gather(*held)
        assert time.perf_counter() - arrived < 1.0
        assert set(results) == {Readiness.READY} and state.held == 0 and state.held_by_feed["iss"] == 0
        assert (state.epoch, state.cursor) == ("edge-1", 5)
        assert state.health["iss"]["state"] == "live"

    asyncio.run(scenario())


def test_a_wait_ends_at_its_bound_and_a_far_request_is_not_held() -> None:
    async def scenario() -> None:
        state = ReplicaState(POLICY)
        w = state.window
        state.apply(batch(2, InitUpdate("iss", info("360p"), b"i"), PartUpdate(part(10, 0))))
        started = time.monotonic()
        got = await state.wait_until("iss", "360p", lambda: w.playlist_ready("iss", "360p", 10, 2), 0.2)
        assert got is Readiness.WAIT and 0.15 < time.monotonic() - started < 2.0
        assert await state.wait_until("iss", "360p", lambda: w.playlist_ready("iss", "360p", 50, 0), 5.0) is Readiness.TOO_FAR
        assert state.held == 0

    asyncio.run(scenario())


def test_the_part_hop_is_timed_for_live_parts_only() -> None:
    state = ReplicaState(POLICY)
    made = time.time() - 0.05
    fresh = part(10, 1)
    timed = type(fresh)(**{**fresh.__dict__, "made_at": made})
    state.apply(batch(1, InitUpdate("iss", info("360p"), b"i"), PartUpdate(part(10, 0)), snapshot=True))
    state.apply(batch(2, PartUpdate(timed)))
    stats = state.stats()
    assert stats["parts_timed"] == 1 and 40 <= stats["part_hop_ms"]["p50"] < 1000
