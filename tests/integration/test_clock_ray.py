"""The clock authority actor and StampingClock clients on the shared local Ray instance.

Every test starts its own named authority (its own NTP port) so that killing one never
touches the live pipeline's clock. Clocks of different actors are compared through
CLOCK_MONOTONIC, which all processes of one host share: each side reads (monotonic, its
clock) back to back, and the pair is carried to a common monotonic instant. That measures
a residual to about a microsecond, where a Ray round trip (hundreds of microseconds, and
asymmetric) could not.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import ntplib
import pytest
import ray

from actors.clock_authority import ClockAuthority
from actors.stamping_clock import StampingClock
from orbitcast.clock import ClockConfig
from tests.conftest import free_port

pytestmark = pytest.mark.ray

SKEW_OFFSET_S = 0.250
SKEW_DRIFT_PPM = 200.0
# How well two (monotonic, clock) probes compare two clocks: each is the middle of the
# tightest of 5 brackets, a few microseconds wide. A read counts as within its clock's
# claimed error bound when it is within that bound plus this.
PROBE_SLACK_S = 20e-6


@dataclass(frozen=True)
class Contract:
    """What a stamping clock on one transport is held to, once settled, on every read:
    within `within_s` of the authority, and within the error bound it reports itself."""

    transport: str
    within_s: float

    @property
    def id(self) -> str:
        name = "udp" if self.transport == "auto" else "ray_call"
        return f"{name}_within_{self.within_s * 1e3:g}ms"


# Measured on this 2-core host with the test's settings (sync every 0.1 s; 876-1,304 reads
# per actor and run): quiet; with the live test pipeline and other engineers' test runs
# (load average 6-28); and with three extra busy loops on top.
#
# "auto" picks UDP NTP to the authority's server (same node): every stamping actor on the
# authority's node uses it. 1 ms is the clock's promise (docs/clock.md): quiet and loaded,
# max 0.15 ms; with the busy loops, max 1.3 ms (a starved host can break it; CI has kept it).
UDP = Contract("auto", 1e-3)
# "ray" is the actor-call exchange, for clients that cannot reach the authority's UDP server.
# Its request and reply paths differ, and under CPU starvation the asymmetry grows with the
# round trip: quiet, max 0.8 ms; loaded, max 0.43 ms; with the busy loops, median 0.8-1.3 ms,
# max 3.2 ms, claimed bound median 7 ms; CI's loaded run was reported at ~9 ms median (why
# 1 ms was dropped for it). So it is held to 50 ms, above every figure seen with margin and
# still 5x below the 250 ms it must remove; and on every read, whatever the load, to the
# error bound it reports (half its least-delay round trip and more: a slower exchange widens
# the bound rather than breaking it), which is what /api/clock promises an operator.
RAY_CALL = Contract("ray", 50e-3)


def fast_config(ntp_port: int) -> ClockConfig:
    # Short intervals keep the suite quick; the discipline is the same as in production.
    return ClockConfig(local_stratum=3, ntp_port=ntp_port, tick_interval_s=0.2,
                       sync_interval_s=0.1, exchange_timeout_s=0.3, holdover_after_s=2.0)


@ray.remote(num_cpus=0)
class Stamper:
    """A minimal stamping actor: holds a StampingClock the way FeedActor does."""

    def __init__(self, authority: Any, name: str, offset_s: float, drift_ppm: float,
                 transport: str) -> None:
        self.clock = StampingClock(authority, name, skew_offset_s=offset_s,
                                   skew_drift_ppm=drift_ppm, transport=transport).start()

    def probe(self) -> tuple[float, float]:
        return self.clock.probe()

    def probe_bounded(self) -> tuple[float, float, float]:
        """probe() and the error bound the clock claimed around it (the larger of the bound
        just before and just after, in case an exchange landed in between)."""
        assert self.clock.client is not None
        before = self.clock.client.status().error_bound_s
        m, t = self.clock.probe()
        after = self.clock.client.status().error_bound_s
        assert before is not None and after is not None, "not synced"
        return m, t, max(before, after)

    def raw_probe(self) -> tuple[float, float]:
        """(monotonic, the undisciplined local clock): shows the injected skew is real."""
        assert self.clock.client is not None
        m0 = time.monotonic()
        raw = self.clock.client.clock.raw_now()
        return (m0 + time.monotonic()) / 2, raw

    def pdt_at(self, mono: float) -> float:
        """The program date-time this actor would stamp on a frame seen at monotonic `mono`:
        what Source does, its clock read when the frame arrives, carried by elapsed time."""
        m, t = self.clock.probe()
        return t + (mono - m)

    def status(self) -> dict:
        return self.clock.status()

    def history(self) -> list[dict]:
        return self.clock.history()

    def stop(self) -> None:
        self.clock.stop()


def residual(actor: Any, authority: Any, raw: bool = False) -> float:
    """actor's clock minus the authority's, at one monotonic instant."""
    m_a, t_a = ray.get(authority.probe.remote())
    m_c, t_c = ray.get((actor.raw_probe if raw else actor.probe).remote())
    return t_c - (t_a + (m_c - m_a))


def bounded_residual(actor: Any, authority: Any) -> tuple[float, float]:
    """(actor's clock minus the authority's, the error bound the actor claimed for it)."""
    m_a, t_a = ray.get(authority.probe.remote())
    m_c, t_c, bound = ray.get(actor.probe_bounded.remote())
    return t_c - (t_a + (m_c - m_a)), bound


def settle(actor: Any, authority: Any, limit: float, timeout: float = 30) -> None:
    """Wait until five reads in a row are within `limit` of the authority (a slew has settled)."""
    deadline, streak = time.monotonic() + timeout, 0
    while streak < 5:
        assert time.monotonic() < deadline, f"the clock did not settle within {limit * 1e3:.1f} ms in {timeout:.0f} s"
        streak = streak + 1 if abs(residual(actor, authority)) < limit else 0
        time.sleep(0.1)


def wait_for(cond, timeout: float, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


# One authority and one pair of clients per transport for the module: actors cost seconds
# to start on a busy host. The restart test runs last in each group and leaves the authority
# restarted, which is what a later test must cope with anyway.
@pytest.fixture(scope="module")
def authority(ray_session) -> Iterator[tuple[Any, ClockConfig]]:
    cfg = fast_config(free_port())
    name = f"clock-test-{uuid.uuid4().hex[:8]}"
    handle = ClockAuthority.options(name=name).remote(cfg, name)
    ray.get(handle.now.remote(), timeout=30)
    yield handle, cfg
    ray.kill(handle, no_restart=True)


# Both transports, each with its contract (above).
@pytest.fixture(scope="module", params=[UDP, RAY_CALL], ids=lambda c: c.id)
def stampers(authority, request) -> Iterator[dict[str, Any]]:
    handle, _ = authority
    contract: Contract = request.param
    tag = contract.transport
    actors = {
        "skewed": Stamper.remote(handle, f"test:{tag}:skewed", SKEW_OFFSET_S, SKEW_DRIFT_PPM,
                                 contract.transport),
        "plain": Stamper.remote(handle, f"test:{tag}:plain", 0.0, 0.0, contract.transport),
        "contract": contract,
        "names": {f"test:{tag}:skewed", f"test:{tag}:plain"},
    }
    ray.get([actors["skewed"].status.remote(), actors["plain"].status.remote()], timeout=30)
    yield actors
    for a in (actors["skewed"], actors["plain"]):
        ray.kill(a, no_restart=True)


def test_skewed_actor_stamps_within_its_transports_bound_and_its_claimed_error(authority,
                                                                             stampers):
    handle, _ = authority
    skewed, plain = stampers["skewed"], stampers["plain"]
    contract: Contract = stampers["contract"]
    # The injected skew is really there on the raw clock (250 ms plus what drift added).
    raw = residual(skewed, handle, raw=True)
    assert 0.245 < raw < 0.260, raw
    # Let the frequency fit see a few seconds of the 200 ppm drift, and let the clock slew out
    # what a first sync on a busy host got wrong (at most 500 ppm: 1 ms takes 2 s): "after
    # sync" is once five reads in a row are within the contract, which must happen in 30 s.
    time.sleep(3.0)
    settle(skewed, handle, contract.within_s)
    reads: dict[str, list[tuple[float, float]]] = {"skewed": [], "plain": [], "pdt_gap": []}
    for _ in range(40):
        rs, bs = bounded_residual(skewed, handle)
        rp, bp = bounded_residual(plain, handle)
        reads["skewed"].append((rs, bs))
        reads["plain"].append((rp, bp))
        # The same frame instant, stamped by both actors: apart by at most both bounds.
        instant = time.monotonic()
        a, b = ray.get([skewed.pdt_at.remote(instant), plain.pdt_at.remote(instant)])
        reads["pdt_gap"].append((a - b, bs + bp))
        time.sleep(0.05)
    for what, xs in reads.items():
        errors = [abs(x) for x, _ in xs]
        summary = (what, "max/median (s)", max(errors), statistics.median(errors),
                   "claimed bound median (s)", statistics.median(b for _, b in xs))
        assert max(errors) < contract.within_s, summary
        # Never better than it claims: every read within the bound the clock reported.
        assert all(abs(x) <= bound + PROBE_SLACK_S for x, bound in xs), (
            summary, [(x, bound) for x, bound in xs if abs(x) > bound + PROBE_SLACK_S])
    st = ray.get(skewed.status.remote())
    assert st["state"] == "synced" and st["reference"]["state"] == "ok", st
    # It measured the skew it removed, and says how far off it can be.
    assert st["error_bound_s"] is not None and st["error_bound_s"] < contract.within_s, st
    if contract is UDP:
        # The drift is fitted (sign: authority minus local). Over the Ray call the fit sees
        # the call's jitter (ms under load over a 6 s history): tens to hundreds of ppm off,
        # which the bound above accounts for, so it is only checked over UDP.
        assert abs(st["frequency_ppm"] + SKEW_DRIFT_PPM) < 50, st
    assert st["injected_skew"] == {"offset_s": SKEW_OFFSET_S, "drift_ppm": SKEW_DRIFT_PPM}
    # The authority lists both clients for /api/clock, with what each measured.
    body = ray.get(handle.status.remote())
    assert body["authority"]["role"] == "authority" and body["authority"]["stratum"] == 3
    assert body["authority"]["reference"]["kind"] == "system"
    assert body["authority"]["reference"]["state"] == "ok"
    by_name = {e["name"]: e for e in body["actors"]}
    assert stampers["names"] <= set(by_name), by_name
    for name in stampers["names"]:
        e = by_name[name]
        for key in ("offset_s", "delay_s", "error_bound_s", "last_sync", "last_sync_iso",
                    "state", "reference", "transport"):
            assert key in e, (key, e)
        assert e["state"] == "synced" and not e["stale"], e
        assert 0 < e["delay_s"] < 0.3, e
        assert e["transport"] == st["transport"], e
    assert st["transport"].startswith("udp 127.0.0.1:" if contract is UDP else "ray"), st


def test_authority_restart_holdover_growing_bound_then_resync(authority, stampers):
    handle, cfg = authority
    skewed, plain = stampers["skewed"], stampers["plain"]
    contract: Contract = stampers["contract"]
    time.sleep(1.5)
    settle(skewed, handle, contract.within_s)
    before = ray.get(skewed.history.remote())
    seen = [ray.get(plain.probe.remote())[1]]
    assert before[-1]["ok"] and before[-1]["state"] == "synced"
    killed_at = time.monotonic()
    ray.kill(handle, no_restart=False)  # Ray restarts it: same name, config and NTP port

    def resynced_after_failures() -> bool:
        seen.append(ray.get(plain.probe.remote())[1])
        h = ray.get(skewed.history.remote())[len(before):]
        fails = [i for i, e in enumerate(h) if not e["ok"]]
        return bool(fails) and any(e["ok"] for e in h[fails[-1] + 1:])

    assert wait_for(resynced_after_failures, timeout=30, step=0.1)
    outage = time.monotonic() - killed_at
    # Stamps never went back, through holdover and resync.
    assert all(b >= a for a, b in zip(seen, seen[1:]))
    # The outage as the client saw it: its last good exchange, then the failed ones (a Ray
    # call may wait out most of a quick restart, so there may be only one).
    hist = ray.get(skewed.history.remote())[len(before) - 1:]
    outages: list[list[dict]] = []
    for prev, e in zip(hist, hist[1:]):
        if not e["ok"]:
            if prev["ok"]:
                outages.append([prev])
            outages[-1].append(e)
    assert outages, hist
    chain = max(outages, key=len)
    failed = chain[1:]
    # While the authority was away the client held over on its fitted clock...
    assert all(e["state"] == "holdover" for e in failed), failed
    # ...and said so: what holdover adds to its bound (15 ppm of the elapsed time) grew at
    # every failed attempt. Only a phase error still being slewed out (at up to 500 ppm,
    # milliseconds over the Ray call under load) can shrink the bound meanwhile, so that part
    # is set apart; once it is slewed out, the reported bound itself grows at every attempt.
    held = [e["error_bound_s"] - abs(e["slew_remaining_s"]) for e in chain]
    assert all(b > a for a, b in zip(held, held[1:])), held
    slewed_out = [e["error_bound_s"] for e in chain if e["slew_remaining_s"] == 0.0]
    assert all(b > a for a, b in zip(slewed_out, slewed_out[1:])), slewed_out
    # Back in step: synced, and within its contract of the (new) authority process.
    assert wait_for(lambda: ray.get(skewed.status.remote())["state"] == "synced", timeout=5)

    def in_step() -> bool:
        r, bound = bounded_residual(skewed, handle)
        return abs(r) < contract.within_s and abs(r) <= bound + PROBE_SLACK_S

    # A resync slews (at most 500 ppm), so what the outage let the clock drift off is
    # removed within seconds, not at once.
    assert wait_for(in_step, timeout=20, step=0.2)
    # The restarted authority serves NTP again on the configured port.
    assert ray.get(handle.ntp_address.remote()) == ("127.0.0.1", cfg.ntp_port)
    assert outage < 30
    # The restarted authority's registry refills from the clients' next reports.
    assert wait_for(lambda: stampers["names"] <= {
        e["name"] for e in ray.get(handle.status.remote())["actors"]}, timeout=5)


def test_ntplib_queries_the_authority_actor(authority):
    handle, cfg = authority
    addr = ray.get(handle.ntp_address.remote())
    assert addr == ("127.0.0.1", cfg.ntp_port)
    client = ntplib.NTPClient()
    r = client.request(addr[0], port=addr[1], version=4, timeout=2)
    assert abs(r.offset) < 5e-3, r.offset
    assert r.stratum == cfg.local_stratum == 3
    assert r.leap == 0 and r.mode == 4
    assert r.ref_id.to_bytes(4, "big") == b"LOCL"
    st = ray.get(handle.status.remote())["authority"]["ntp_server"]
    assert st["port"] == cfg.ntp_port and st["replies"] >= 1


