"""Device profiles for the browser players: the network (downlink, uplink, round trip) and the
CPU of the device, applied to each page through the DevTools protocol
(Network.emulateNetworkConditions, Emulation.setCPUThrottlingRate).

A profile is named (`console`, `4g`, `3g`, `stairs`) and may carry its own downlink after `@`
(`3g@600k`: 3g's round trip and CPU, 600 kbit/s down), to fit a profile to a ladder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .errors import PlaytestError


@dataclass(frozen=True)
class Conditions:
    down_bps: float
    up_bps: float
    rtt_ms: float

    def cdp(self) -> dict[str, float | bool]:
        """Network.emulateNetworkConditions' parameters (throughputs in bytes per second; the
        latency is added to every request's round trip)."""
        return {"offline": False, "latency": self.rtt_ms, "downloadThroughput": self.down_bps / 8,
                "uploadThroughput": self.up_bps / 8}


@dataclass(frozen=True)
class Profile:
    name: str
    network: Conditions
    cpu_slowdown: float  # Emulation.setCPUThrottlingRate: 1 = this machine's speed
    device: str  # P.1203's I.GEN device: "pc" (a screen across the room) or "mobile"
    display: str  # P.1203's I.GEN display size
    stairs: tuple[float, ...] = ()  # downlink fractions over the run, in equal steps (stairs)

    def at(self, fraction: float) -> Conditions:
        """The network at `fraction` (0..1) of the run."""
        if not self.stairs:
            return self.network
        step = min(len(self.stairs) - 1, max(0, int(fraction * len(self.stairs))))
        return replace(self.network, down_bps=self.network.down_bps * self.stairs[step])

    def step_times(self, seconds: float) -> list[float]:
        """When the network changes, seconds from the start (0 for a steady profile)."""
        n = max(1, len(self.stairs))
        return [seconds * i / n for i in range(n)]


PROFILES: dict[str, Profile] = {
    # A console on home broadband: its own CPU, a steady 8 Mbit/s.
    "console": Profile("console", Conditions(8e6, 2e6, 40), 1.0, "pc", "1920x1080"),
    # A mid-range phone on a good 4G cell.
    "4g": Profile("4g", Conditions(4e6, 1.5e6, 150), 2.0, "mobile", "1280x720"),
    # A low-end phone on 3G (Chrome DevTools' "Fast 3G" with a slower CPU).
    "3g": Profile("3g", Conditions(1.6e6, 0.75e6, 300), 4.0, "mobile", "1280x720"),
    # Home broadband that degrades and recovers: 8 -> 4 -> 1.6 -> 0.8 Mbit/s and back up.
    "stairs": Profile("stairs", Conditions(8e6, 2e6, 40), 1.0, "pc", "1920x1080",
                      stairs=(1.0, 0.5, 0.2, 0.1, 0.2, 0.5, 1.0)),
}

_RATE = re.compile(r"^(\d+(?:\.\d+)?)([kKmM])?$")


def parse_rate(text: str) -> float:
    """`600k`, `1.6M`, `800000` -> bits per second."""
    m = _RATE.match(text.strip())
    if not m:
        raise PlaytestError(f"bad bit rate {text!r}: write it as 600k, 1.6M or 800000")
    scale = {"k": 1e3, "m": 1e6}.get((m.group(2) or "").lower(), 1.0)
    value = float(m.group(1)) * scale
    if value < 10_000:
        raise PlaytestError(f"bit rate {text!r} is below 10 kbit/s")
    return value


def profile(spec: str) -> Profile:
    """A profile by name, with an optional downlink (`3g@600k`)."""
    name, _, rate = spec.strip().partition("@")
    if name not in PROFILES:
        raise PlaytestError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    p = PROFILES[name]
    if rate:
        p = replace(p, name=spec.strip(), network=replace(p.network, down_bps=parse_rate(rate)))
    return p


def assign(specs: str | None, browsers: int) -> list[Profile]:
    """A profile per browser: `specs` (comma-separated) in turn, or the four named ones."""
    names = [s for s in (specs or "").split(",") if s.strip()] or list(PROFILES)
    chosen = [profile(s) for s in names]
    return [chosen[i % len(chosen)] for i in range(browsers)]
