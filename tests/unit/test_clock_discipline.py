"""Skew injection, monotonicity, slewing, holdover and resync, all over simulated time.

A `SimTime` is the true time; the authority's clock reads it directly (system reference
over simulated time) and a client's local clock is a skewed view of it. Exchanges advance
simulated time by seeded random network delays, so every run is the same and takes
milliseconds, yet exercises the real filter, discipline and authority code.
"""

from __future__ import annotations

import random
from typing import Callable

import pytest

from orbitcast.clock import (AuthorityReply, ClockAuthority, ClockConfig, ClockState,
                             DisciplinedClock, SyncClient, SystemReference)


class SimTime:
    def __init__(self, t: float = 1_795_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def skewed(sim: SimTime, offset: float, drift: float) -> Callable[[], float]:
    t0 = sim.t
    return lambda: sim.t + offset + drift * (sim.t - t0)


def sim_authority(sim: SimTime) -> ClockAuthority:
    clock = DisciplinedClock(sim)
    auth = ClockAuthority(SystemReference(clock.raw_now, wall=sim, stratum=2), clock)
    auth.tick()
    return auth


class Network:
    """ask(t1) over simulated time: random one-way delays, exponential tail."""

    def __init__(self, sim: SimTime, auth: ClockAuthority, seed: int) -> None:
        self.sim, self.auth = sim, auth
        self.rng = random.Random(seed)
        self.up = True

    def leg(self) -> float:
        return 100e-6 + self.rng.expovariate(1 / 400e-6)

    def __call__(self, t1: float) -> AuthorityReply:
        if not self.up:
            self.sim.advance(1.0)  # the caller's timeout
            raise TimeoutError("authority did not answer")
        self.sim.advance(self.leg())
        r = self.auth.answer(t1)
        self.sim.advance(self.leg())
        return r


def run(sim: SimTime, auth: ClockAuthority, clients: list[SyncClient], net: Network,
        seconds: float, interval: float = 1.0, reads_per_interval: int = 10,
        on_read: Callable[[SyncClient, float, float], None] | None = None) -> None:
    """Exchange every `interval`; read every client's clock in between."""
    steps = int(seconds / interval)
    for _ in range(steps):
        for c in clients:
            c.exchange(net)
        for _ in range(reads_per_interval):
            sim.advance(interval / reads_per_interval)
            auth.tick()
            for c in clients:
                out = c.now()
                if on_read is not None:
                    on_read(c, out, auth.now())


def test_skew_injection_residual_under_1ms_and_monotonic() -> None:
    sim = SimTime()
    auth = sim_authority(sim)
    skewed_client = SyncClient(DisciplinedClock(skewed(sim, +0.250, 200e-6)))
    plain_client = SyncClient(DisciplinedClock(skewed(sim, 0.0, 0.0)))
    net = Network(sim, auth, seed=42)
    last: dict[int, float] = {}
    worst_after_sync: list[float] = []

    def check(c: SyncClient, out: float, truth: float) -> None:
        assert out >= last.get(id(c), float("-inf")), "clock went backwards"
        last[id(c)] = out

    # Warm-up: 16 exchanges fill the filter and fit the frequency.
    run(sim, auth, [skewed_client, plain_client], net, 16.0, on_read=check)

    def measure(c: SyncClient, out: float, truth: float) -> None:
        check(c, out, truth)
        worst_after_sync.append(abs(out - truth))

    run(sim, auth, [skewed_client, plain_client], net, 120.0, on_read=measure)
    assert max(worst_after_sync) < 1e-3
    st = skewed_client.status()
    assert st.state is ClockState.SYNCED
    assert st.frequency_ppm == pytest.approx(-200.0, abs=20.0)  # the injected drift, found
    assert st.raw_offset_s is not None and st.raw_offset_s < -0.25  # the injected offset
    assert st.error_bound_s is not None and 0 < st.error_bound_s < 2e-3
    # Both clients' error is within its reported bound.
    for c in (skewed_client, plain_client):
        bound = c.status().error_bound_s
        assert bound is not None and abs(c.now() - auth.now()) <= bound
    # Program date-times stamped at the same instant agree within 1 ms.
    assert abs(skewed_client.now() - plain_client.now()) < 1e-3


def test_sync_after_time_was_handed_out_slews_never_steps_back() -> None:
    sim = SimTime()
    auth = sim_authority(sim)
    client = SyncClient(DisciplinedClock(skewed(sim, +0.250, 200e-6)))
    net = Network(sim, auth, seed=3)
    before = client.now()  # time handed out before any sync: it is 250 ms ahead
    assert before - auth.now() == pytest.approx(0.25, abs=1e-6)
    prev = (sim.t, before)
    rates: list[float] = []

    def check(c: SyncClient, out: float, truth: float) -> None:
        nonlocal prev
        assert out >= prev[1]
        rates.append((out - prev[1]) / (sim.t - prev[0]))
        prev = (sim.t, out)

    run(sim, auth, [client], net, 700.0, on_read=check)
    # Never faster or slower than 1 +- (drift + slew); that is 500 ppm of slew on top of a
    # 200 ppm oscillator, with a little room for the frequency estimate settling.
    assert min(rates) > 1 - 750e-6 and max(rates) < 1 + 750e-6
    assert min(rates) < 1 - 400e-6  # it did slew backwards-in-rate, not wait
    # 250 ms at 500 ppm takes 500 s; after 700 s the residual is gone.
    assert abs(client.now() - auth.now()) < 1e-3


def test_far_behind_steps_forward() -> None:
    sim = SimTime()
    auth = sim_authority(sim)
    client = SyncClient(DisciplinedClock(skewed(sim, -2.0, 0.0)))
    net = Network(sim, auth, seed=5)
    before = client.now()
    client.exchange(net)
    after = client.now()
    assert after > before + 1.9  # jumped forward, monotonic
    assert abs(after - auth.now()) < 1e-3


def test_authority_away_holdover_bound_grows_then_resync() -> None:
    sim = SimTime()
    auth = sim_authority(sim)
    client = SyncClient(DisciplinedClock(skewed(sim, 0.1, -150e-6), holdover_after_s=5.0))
    net = Network(sim, auth, seed=11)
    run(sim, auth, [client], net, 20.0)
    st = client.status()
    assert st.state is ClockState.SYNCED and st.error_bound_s is not None
    synced_bound = st.error_bound_s

    net.up = False
    r = client.exchange(net)
    assert not r.ok and "TimeoutError" in (r.error or "")
    assert client.status().state is ClockState.HOLDOVER
    bounds = []
    residuals = []
    last = client.now()
    for _ in range(60):
        client.exchange(net)  # each failed try costs a 1 s timeout
        sim.advance(1.0)
        auth.tick()
        st = client.status()
        assert st.state is ClockState.HOLDOVER
        assert "unreachable" in st.reason
        bounds.append(st.error_bound_s)
        now = client.now()
        assert now >= last
        last = now
        residuals.append(abs(now - auth.now()))
    assert all(b is not None for b in bounds)
    assert all(b2 > b1 for b1, b2 in zip(bounds, bounds[1:]))  # strictly growing
    assert bounds[-1] - synced_bound == pytest.approx(15e-6 * 121, rel=0.2)
    # Holding over on the fitted frequency keeps the real error within the bound.
    assert max(residuals) < bounds[-1]
    assert max(residuals) < 1e-3

    # The authority is back (a fresh one, as after an actor restart): resync.
    auth2 = sim_authority(sim)
    net2 = Network(sim, auth2, seed=12)
    run(sim, auth2, [client], net2, 10.0)
    st = client.status()
    assert st.state is ClockState.SYNCED
    assert st.error_bound_s is not None and st.error_bound_s < bounds[-1]
    assert abs(client.now() - auth2.now()) < 1e-3
    assert st.failures == 61


def test_silence_alone_means_holdover_and_rejects_unsynced_authority() -> None:
    sim = SimTime()
    auth = sim_authority(sim)
    client = SyncClient(DisciplinedClock(skewed(sim, 0.0, 0.0), holdover_after_s=5.0))
    assert client.status().state is ClockState.UNSYNCED
    assert client.status().error_bound_s is None
    client.exchange(Network(sim, auth, seed=1))
    assert client.status().state is ClockState.SYNCED
    sim.advance(6.0)  # nobody called exchange: stale is holdover too
    assert client.status().state is ClockState.HOLDOVER
    # An authority that says it is unsynchronized is not followed.
    r = client.exchange(lambda t1: AuthorityReply(t2=sim.t + 5, t3=sim.t + 5, leap=3,
                                                  stratum=16))
    assert not r.ok and client.rejected == 1
    assert abs(client.now() - sim.t) < 1e-3
    # Nor is a malformed reply.
    assert not client.exchange(lambda t1: ("x",)).ok  # type: ignore[arg-type,return-value]
    # A bare (t2, t3) tuple is a valid reply.
    assert client.exchange(lambda t1: (sim.t, sim.t)).ok


def test_authority_unsynced_before_first_tick_and_config_factories() -> None:
    sim = SimTime()
    cfg = ClockConfig(local_stratum=3)
    auth = ClockAuthority.from_config(cfg, source=sim)
    assert auth.server_info().stratum == 16 and auth.server_info().leap == 3
    client = SyncClient.from_config(cfg, source=skewed(sim, 0.5, 0.0))
    assert not client.exchange(auth.answer).ok  # refused while the authority is unsynced
    auth.tick()
    info = auth.server_info()
    assert info.stratum == 3 and info.leap == 0 and info.ref_id == b"LOCL"
    assert client.exchange(auth.answer).ok
    assert abs(client.now() - auth.now()) < 1e-6
    with pytest.raises(ValueError, match="ntp_server"):
        ClockConfig(reference="ntp")
    with pytest.raises(ValueError, match="nmea_source"):
        ClockConfig(reference="nmea")
    with pytest.raises(ValueError):
        ClockConfig(bogus=1)  # type: ignore[call-arg]
