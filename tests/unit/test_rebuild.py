"""An edge started again rebuilds its window from the replicas before it takes new media
(orbitcast/delivery/rebuild.py): replicas that the dead edge's last writes reached unevenly end
up listing the same parts, and each holds every part it lists."""

from __future__ import annotations

import re
import threading
import time

from orbitcast.delivery.rebuild import Rebuild, adopt, adopt_health
from orbitcast.delivery.replica import ReplicaState
from orbitcast.delivery.updates import UpdateLog
from orbitcast.delivery.window import InitUpdate, LiveWindow, PartUpdate, SegmentUpdate, Update
from tests.unit.test_window import POLICY, PPS, S, info, part, whole


def health() -> dict[str, dict]:
    return {}


class FakeEdge:
    """The edge's window, log and rebuild, as actors/edge.py wires them (without Ray)."""

    def __init__(self, restarted: bool) -> None:
        self.window = LiveWindow(POLICY)
        self.log = UpdateLog(self.window.snapshot)
        self.rebuild = Rebuild(restarted, quiet_s=0.3, max_s=5.0)

    def write(self, update: Update) -> None:
        self.rebuild.wait()  # the gateway's callback is held while the window is rebuilt
        if self.window.apply(update):
            self.log.append(update)

    def follow(self, state: ReplicaState, name: str) -> None:
        """One long poll of a replica, as deployments/delivery.py makes it."""
        batch = self.log.since(state.epoch, state.cursor, 0, health)
        if batch.adopt:
            self.rebuild.asked_by(name)
            adopt(self.window, self.log, state.hand_over())
            self.rebuild.adopted_from(name)
            batch = self.log.since(state.epoch, state.cursor, 0, health)
        state.apply(batch)


def listed_parts(state: ReplicaState) -> list[str]:
    text = state.window.media("iss", "360p")
    assert text is not None
    return re.findall(r'#EXT-X-PART:.*URI="([^"]+)"', text)


def test_replicas_that_the_dead_edges_last_write_reached_unevenly_list_the_same_parts_and_hold_them() -> None:
    old = FakeEdge(restarted=False)
    a, b = ReplicaState(POLICY), ReplicaState(POLICY)
    old.write(InitUpdate("iss", info("360p"), b"init"))
    for seq in (S, S + 1):
        for i in range(PPS):
            old.write(PartUpdate(part(seq, i)))
        old.write(SegmentUpdate(whole(seq)))
    old.write(PartUpdate(part(S + 2, 0)))
    old.follow(a, "a")
    old.follow(b, "b")
    # The edge's last write reaches replica a; its long poll for b is in flight when it dies.
    old.write(PartUpdate(part(S + 2, 1)))
    old.follow(a, "a")
    assert f"{S + 2}.1.m4s" in listed_parts(a) and f"{S + 2}.1.m4s" not in listed_parts(b)

    new = FakeEdge(restarted=True)
    assert not new.rebuild.done
    # The gateway's retried callback (the rest of the seq, from the new encoder state on) waits
    # for the rebuild; the replicas' retried long polls come meanwhile.
    rest = threading.Thread(target=lambda: [new.write(PartUpdate(part(S + 2, i))) for i in range(2, PPS)]
                            + [new.write(PartUpdate(part(S + 3, 0)))])
    rest.start()
    time.sleep(0.05)
    new.follow(a, "a")
    new.follow(b, "b")
    rest.join(timeout=5)
    assert not rest.is_alive() and new.rebuild.done
    new.follow(a, "a")
    new.follow(b, "b")

    assert a.window.media("iss", "360p") == b.window.media("iss", "360p")
    for uri in listed_parts(b):
        seq, index = map(int, uri.split(".")[:2])
        assert b.window.part_bytes("iss", "360p", seq, index) == part(seq, index).data, uri
    assert f"{S + 2}.1.m4s" in listed_parts(b)


def test_with_the_commit_no_replica_shows_a_write_of_the_dead_edge_that_another_lacks() -> None:
    """The replicas as deployments/delivery.py follows: named, with the commit they know."""

    def follow(edge: FakeEdge, state: ReplicaState, name: str) -> None:
        batch = edge.log.since(state.epoch, state.cursor, 0, health, name, state.committed)
        if batch.adopt:
            edge.rebuild.asked_by(name)
            adopt(edge.window, edge.log, state.hand_over())
            edge.rebuild.adopted_from(name)
            batch = edge.log.since(state.epoch, state.cursor, 0, health, name, state.committed)
        state.apply(batch)

    old = FakeEdge(restarted=False)
    a, b = ReplicaState(POLICY), ReplicaState(POLICY)
    old.write(InitUpdate("iss", info("360p"), b"init"))
    for i in range(2):
        old.write(PartUpdate(part(S, i)))
    for _ in range(3):  # joined (a snapshot), then following: both held what came
        follow(old, a, "a")
        follow(old, b, "b")
    assert listed_parts(a) == listed_parts(b) == [f"{S}.0.m4s", f"{S}.1.m4s"]
    old.write(PartUpdate(part(S, 2)))
    follow(old, a, "a")
    follow(old, a, "a")  # a holds it, and says so; b's long poll is in flight when the edge dies
    assert f"{S}.2.m4s" not in listed_parts(a) and a.pending

    new = FakeEdge(restarted=True)
    follow(new, b, "b")  # b hands its window over first: the write is not in it
    follow(new, a, "a")  # a's is, with the write it held back
    for _ in range(3):
        follow(new, a, "a")
        follow(new, b, "b")
    assert listed_parts(a) == listed_parts(b) == [f"{S}.0.m4s", f"{S}.1.m4s", f"{S}.2.m4s"]


def test_a_replica_that_never_comes_does_not_hold_the_stream_past_the_bound() -> None:
    rebuild = Rebuild(True, quiet_s=0.05, max_s=0.3)
    rebuild.asked_by("a")
    rebuild.asked_by("b")
    rebuild.adopted_from("a")  # b died with the edge's node: it never hands anything over
    started = time.monotonic()
    rebuild.wait()
    assert 0.2 < time.monotonic() - started < 2.0
    assert rebuild.stats()["done"] and rebuild.stats()["held"] == 1


def test_the_hold_ends_once_every_replica_that_asked_has_handed_its_window_over() -> None:
    rebuild = Rebuild(True, quiet_s=0.05, max_s=10.0)
    rebuild.asked_by("a")
    threading.Timer(0.1, rebuild.adopted_from, args=("a",)).start()
    started = time.monotonic()
    rebuild.wait()
    assert 0.08 < time.monotonic() - started < 2.0
    stats = rebuild.stats()
    assert (stats["asked"], stats["adopted"]) == (1, 1)


def test_a_standby_that_takes_over_waits_for_the_replicas_it_knew_and_no_longer() -> None:
    """The standby held the long polls of replicas a and b while it stood by: once both handed
    their windows over, the callbacks go on, without the quiet wait a restarted edge keeps for
    replicas it cannot know of."""
    now = [100.0]
    rebuild = Rebuild(True, clock=lambda: now[0], quiet_s=10.0, max_s=20.0, expected={"a", "b"})
    rebuild.asked_by("a")
    rebuild.asked_by("b")
    rebuild.adopted_from("a")
    now[0] += 0.01
    assert not rebuild.done, "b has not handed its window over yet"
    rebuild.adopted_from("b")
    assert rebuild.done
    assert Rebuild(True, clock=lambda: now[0], quiet_s=10.0, max_s=20.0).done is False, "a restart keeps the wait"


def test_an_edge_started_for_the_first_time_holds_nothing() -> None:
    rebuild = Rebuild(False)
    started = time.monotonic()
    rebuild.wait()
    assert rebuild.done and time.monotonic() - started < 0.05
    rebuild.asked_by("a")  # a stale follower later still hands over, without a hold
    assert rebuild.stats()["asked"] == 0


def test_a_new_edge_takes_the_feeds_health_from_a_replica_until_each_feed_reports_again() -> None:
    """A new edge knows each feed as "starting" until its actor reports (once a second); the
    replica's copy says what the feed was doing. A report made since the restart is newer than
    any copy, and a feed the edge does not run is not taken."""
    health = {"iss": {"feed": "iss", "state": "starting"}, "dock": {"feed": "dock", "state": "starting"}}
    reported = {"dock"}
    health["dock"] = {"feed": "dock", "state": "waiting", "timeline_start": 5.0}
    copy = {"iss": {"feed": "iss", "state": "live", "timeline_start": 1.0},
            "dock": {"feed": "dock", "state": "live", "timeline_start": 2.0},
            "gone": {"feed": "gone", "state": "live"}}
    assert adopt_health(health, reported, copy)
    assert health == {"iss": {"feed": "iss", "state": "live", "timeline_start": 1.0},
                      "dock": {"feed": "dock", "state": "waiting", "timeline_start": 5.0}}
    assert not adopt_health(health, reported, copy)  # the same copy again changes nothing
