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


def test_held_requests_are_answered_from_the_arrival_in_order_and_a_failed_early_answer_falls_back() -> None:
    async def scenario() -> None:
        state = ReplicaState(POLICY)
        w = state.window
        state.apply(batch(1, InitUpdate("iss", info("360p"), b"i"), PartUpdate(part(10, 0)), snapshot=True))
        answered: list[int] = []
        seen_arrival: list[float] = []

        def answer(i: int):  # type: ignore[no-untyped-def]
            def write() -> bool:
                if i == 3:
                    raise OSError("connection reset")  # this one's task answers it
                if i == 4:
                    return False  # declined (e.g. a HEAD): its task answers it
                seen_arrival.append(state.arrived[("iss", "360p")])
                answered.append(i)
                return True
            return write

        held = [asyncio.create_task(state.wait_until("iss", "360p", lambda: w.playlist_ready("iss", "360p", 10, 1), 5.0,
                                                     answer(i)))
                for i in range(6)]
        await asyncio.sleep(0.05)
        before = time.time()
        state.apply(batch(2, PartUpdate(part(10, 0, rendition="240p"))))  # not theirs: nothing answered
        assert answered == []
        state.apply(batch(3, PartUpdate(part(10, 1))))
        # written inside `apply`, before any of the held tasks ran again, in the order they came
        assert answered == [0, 1, 2, 5] and not any(t.done() for t in held)
        assert all(at >= before for at in seen_arrival)  # Ready-At is set before the answers
        assert await asyncio.gather(*held) == [Readiness.READY] * 6
        assert state.held == 0 and not state._early

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
