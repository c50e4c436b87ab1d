"""The clock a stamping actor holds (`orbitcast.clock.follower.Follower`), the one-shot offset
measurement, and the threads and probes under them, without Ray: the authority is an
in-process `ClockAuthority`, reached by a plain function or over real loopback UDP."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import pytest

from orbitcast.clock import ClockAuthority, ClockConfig, SyncClient
from orbitcast.clock.background import Background, every
from orbitcast.clock.follower import INITIAL_BURST, Follower
from orbitcast.clock.probe import monotonic_pair
from orbitcast.clock.skew import SkewedSource
from orbitcast.clock.sync_client import AuthorityReply, ExchangeRejected, least_delay_sample
from orbitcast.clock.transport import Route

NODE = "node-a"


@pytest.fixture
def authority() -> Iterator[ClockAuthority]:
    auth = ClockAuthority.from_config(ClockConfig(local_stratum=3, ntp_port=0,
                                                  tick_interval_s=0.1)).start(serve_ntp=True)
    try:
        yield auth
    finally:
        auth.stop()


class Outage:
    """The authority's actor call, which can be made to fail or to answer unsynchronized."""

    def __init__(self, authority: ClockAuthority) -> None:
        self.authority = authority
        self.away = False
        self.unsynced = False

    def call(self, t1: float) -> AuthorityReply:
        if self.away:
            raise TimeoutError("the authority did not answer")
        r = self.authority.answer(t1)
        return AuthorityReply(t2=r.t2, t3=r.t3, stratum=16, leap=3) if self.unsynced else r

    def where(self) -> dict[str, Any]:
        raise AssertionError("a ray-mode route never asks where")


def skewed_follower(authority: ClockAuthority, route: Route,
                    reports: list[dict[str, Any]] | None = None) -> Follower:
    client = SyncClient.from_config(ClockConfig(), SkewedSource(0.25, 200.0))
    return Follower("feed:test", client, route, sync_interval_s=0.02,
                    report=None if reports is None else reports.append,
                    skew={"offset_s": 0.25, "drift_ppm": 200.0})


def worst_error(follower: Follower, authority: ClockAuthority) -> float:
    """The largest |follower - authority| of 50 reads, each pair carried to one monotonic
    instant (a thread switch between two plain reads would count as clock error)."""
    return max(abs(e) for e, _ in bounded_errors(follower, authority, 50))


# How well two (monotonic, clock) probes compare two clocks (the tightest of 5 brackets,
# a few microseconds wide): a read is within its claimed bound when within it plus this.
PROBE_SLACK_S = 20e-6


def bounded_errors(follower: Follower, authority: ClockAuthority,
                   reads: int) -> list[tuple[float, float]]:
    """(follower - authority, the larger error bound the follower claimed around the read)."""
    out = []
    for _ in range(reads):
        before = follower.client.status().error_bound_s
        m_f, t_f = monotonic_pair(follower.now)
        after = follower.client.status().error_bound_s
        m_a, t_a = monotonic_pair(authority.now)
        assert before is not None and after is not None
        out.append((t_f - (t_a + (m_f - m_a)), max(before, after)))
    return out


def test_skewed_follower_is_in_step_before_start_returns(authority: ClockAuthority) -> None:
    outage = Outage(authority)
    route = Route("ray", call=outage.call, where=outage.where, my_node_id=NODE, timeout_s=1.0)
    reports: list[dict[str, Any]] = []
    follower = skewed_follower(authority, route, reports)
    follower.start()
    try:
        # Nobody has read the clock before start() returns, so its 250 ms are already gone.
        assert worst_error(follower, authority) < 5e-3
        st = follower.status()
        assert st["state"] == "synced" and st["reference"]["state"] == "ok"
        assert st["transport"] == "ray"
        assert st["injected_skew"] == {"offset_s": 0.25, "drift_ppm": 200.0}
        assert len(reports) >= INITIAL_BURST and reports[0]["name"] == "feed:test"
    finally:
        follower.stop()


def test_follower_over_udp_to_the_authoritys_server_is_within_1ms(
        authority: ClockAuthority) -> None:
    server = authority.ntp_server
    assert server is not None
    outage = Outage(authority)
    route = Route("auto", call=outage.call, my_node_id=NODE, timeout_s=1.0,
                  where=lambda: {"node_id": NODE, "ntp": server.address})
    follower = skewed_follower(authority, route).start()
    try:
        assert follower.status()["transport"] == f"udp 127.0.0.1:{server.port}"
        # Settled: what a first burst on a starved host got wrong (CI once: 1.8 ms) is slewed
        # out at 500 ppm, 1 ms in 2 s; the clock says so by its claimed bound. Quiet, at once.
        deadline = time.monotonic() + 30
        while (follower.client.status().error_bound_s or 1.0) >= 1e-3:
            assert time.monotonic() < deadline, follower.client.status()
            time.sleep(0.05)
        xs = bounded_errors(follower, authority, 50)
        assert max(abs(e) for e, _ in xs) < 1e-3, xs
        # never better than it claims, at any load
        assert all(abs(e) <= bound + PROBE_SLACK_S for e, bound in xs), xs
        assert server.replies >= INITIAL_BURST
    finally:
        follower.stop()
    assert route.udp_address is None  # stop() closed the socket


def test_follower_holds_over_says_why_and_resyncs(authority: ClockAuthority) -> None:
    outage = Outage(authority)
    route = Route("ray", call=outage.call, where=outage.where, my_node_id=NODE, timeout_s=1.0)
    follower = skewed_follower(authority, route)
    for _ in range(INITIAL_BURST):
        assert follower.sync_once().ok
    outage.away = True
    res = follower.sync_once()
    st = follower.status()
    assert not res.ok and st["state"] == "holdover"
    assert st["reference"]["state"] == "away" and "did not answer" in st["reference"]["reason"]
    outage.away, outage.unsynced = False, True
    assert not follower.sync_once().ok
    assert follower.status()["reference"]["state"] == "rejected"
    outage.unsynced = False
    assert follower.sync_once().ok
    st = follower.status()
    assert st["state"] == "synced" and st["reference"]["state"] == "ok"
    assert st["exchanges"] == INITIAL_BURST + 3
    assert [h["ok"] for h in follower.history()][-3:] == [False, False, True]


def test_follower_keeps_syncing_in_its_thread_until_stopped(authority: ClockAuthority) -> None:
    outage = Outage(authority)
    route = Route("ray", call=outage.call, where=outage.where, my_node_id=NODE, timeout_s=1.0)
    follower = skewed_follower(authority, route).start()
    try:
        deadline = time.monotonic() + 5
        while len(follower.history()) < INITIAL_BURST + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(follower.history()) >= INITIAL_BURST + 5
    finally:
        follower.stop()
    done = len(follower.history())
    time.sleep(0.1)
    assert len(follower.history()) == done


# -- the one-shot offset (what actors/clock_authority.clock_offset returns) ---------------

class ScriptedLocal:
    """A local clock that advances by the scripted round trip between t1 and t4."""

    def __init__(self, trips: list[tuple[float, float]]) -> None:
        self.t = 1000.0
        self.trips = trips  # (outbound, return) path delays of each exchange
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.t

    def ask(self, t1: float) -> AuthorityReply:
        out, back = self.trips.pop(0)
        t2 = t1 + out + 2.0  # the authority is 2 s ahead
        self.t = t1 + out + back  # t4 is read after the reply came back
        return AuthorityReply(t2=t2, t3=t2, stratum=3)


def test_one_shot_offset_trusts_the_least_delay_exchange() -> None:
    # Asymmetric paths skew the offset by half the difference; the fastest exchange here is
    # also the symmetric one, so its offset is the truth.
    local = ScriptedLocal([(0.030, 0.002), (0.001, 0.001), (0.002, 0.040)])
    best = least_delay_sample(local.ask, local, exchanges=3)
    assert best.offset == pytest.approx(2.0, abs=1e-9)
    assert best.delay == pytest.approx(0.002, abs=1e-9)


def test_one_shot_offset_skips_untrustworthy_replies_and_fails_when_all_are() -> None:
    answers = iter([AuthorityReply(t2=5.0, t3=5.0, stratum=16, leap=3),
                    AuthorityReply(t2=7.0, t3=7.0, stratum=3)])
    best = least_delay_sample(lambda t1: next(answers), lambda: 5.0, exchanges=2)
    assert best.offset == pytest.approx(2.0)
    with pytest.raises(ExchangeRejected, match="unsynchronized"):
        least_delay_sample(lambda t1: AuthorityReply(t2=t1, t3=t1, stratum=16, leap=3),
                           time.time, exchanges=3)


def test_one_shot_offset_raises_when_the_authority_is_away() -> None:
    def away(t1: float) -> AuthorityReply:
        raise TimeoutError("no answer")

    with pytest.raises(TimeoutError):
        least_delay_sample(away, time.time)


# -- threads and probes ------------------------------------------------------------------

def test_background_work_survives_errors_and_stops_when_asked() -> None:
    calls: list[int] = []
    errors: list[Exception] = []

    def work() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("one bad tick")

    bg = Background("test-loop", lambda stop: every(stop, 0.01, work, errors.append))
    deadline = time.monotonic() + 5
    while len(calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    bg.stop()
    assert len(calls) >= 5 and [str(e) for e in errors] == ["one bad tick"]
    assert not bg.running
    done = len(calls)
    time.sleep(0.05)
    assert len(calls) == done


def test_monotonic_pair_keeps_the_read_the_scheduler_did_not_interrupt() -> None:
    reads = iter([(0.05, 1.0), (0.0, 2.0), (0.0, 2.0)])
    lock = threading.Lock()

    def read() -> float:
        with lock:
            pause, value = next(reads)
        time.sleep(pause)  # the first read is "interrupted" for 50 ms
        return value

    before = time.monotonic()
    mono, value = monotonic_pair(read, tries=3)
    assert value == 2.0
    assert mono - before > 0.05  # the middle of a later, tight bracket
