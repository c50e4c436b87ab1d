"""The plan's pool cap, live (docs/energy.md): a transcoder pool following a real governor stops
its standby members while the plan caps the pool, and starts them again when the cap lifts.
The governor runs Lerwick's midsummer day from 06:00 with an empty battery (the reserve), one
site hour in 20 s: 06:00 is the plan's last step (one member per feed), 07:00 the full ladder."""

from __future__ import annotations

import time

import pytest
import ray

from orbitcast.config import parse_config

pytest.importorskip("pvlib", reason="the energy extra (pvlib) is not installed")
pytestmark = pytest.mark.ray

HOUR_S = 20.0
SITE = {"latitude": 60.15, "longitude": -1.15, "altitude_m": 80, "timezone": "Europe/London", "kwp": 0.13,
        "tilt": 60, "battery_wh": 300, "initial_soc": 0.2, "night_reserve": 0.2, "end_soc": "start"}


def until(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (got := check()):
            return got
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:g} s")


def test_standby_members_stop_under_the_cap_and_start_again_after(ray_session) -> None:
    from actors.energy_governor import LadderGovernorActor
    from actors.transcoder import TranscoderPool

    config = parse_config({
        "feeds": [{"name": "capped", "source": "lavfi:testsrc2=size=160x90:rate=10"}],
        "transcoders": 3, "transcoder_cpus": 0,
        "energy": {"power": {"cpus": 2}, "site": SITE,
                   "follow_plan": {"enabled": True, "simulate_date": "2024-06-21", "start_hour": 6,
                                   "minutes": 24 * HOUR_S / 60, "poll_s": 0.25}},
    })
    governor = LadderGovernorActor.remote(config)
    pool = TranscoderPool.remote(config, {}, governor)
    try:
        assert ray.get(governor.ladder.remote())["members"] == 1, "06:00 with an empty battery: the last step"
        capped = until("two standbys stopped", lambda: (s := ray.get(pool.state.remote()))["parked"] and s, HOUR_S)
        assert capped == {"members": 3, "cap": 1, "parked": [1, 2]}
        stopped = ray.get(pool.member.remote(2))
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(stopped.ping.remote(), timeout=10)
        # a feed placed now goes to the one member left running
        assert ray.get(pool.assign.remote("capped"))[0] == 0
        lifted = until("the cap lifted", lambda: (s := ray.get(pool.state.remote()))["cap"] is None and s, 2 * HOUR_S)
        assert lifted["parked"] == []
        for i in (1, 2):  # started again, and they answer
            assert ray.get(ray.get(pool.member.remote(i)).ping.remote(), timeout=30) == 0
    finally:
        ray.kill(pool, no_restart=True)
        ray.kill(governor, no_restart=True)
