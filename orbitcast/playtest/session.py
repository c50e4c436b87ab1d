"""What one player (a browser or a simulated viewer) went through in a playtest, as raw
observations on the run's clock (seconds since the run started). report.py turns these into
figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MEDIA_KINDS = ("part", "hint", "segment")  # requests that fetch media


@dataclass
class RenditionChange:
    t: float
    name: str
    bitrate: int  # bits per second the playlist declares (AVERAGE-BANDWIDTH, else BANDWIDTH)
    height: int | None


@dataclass
class SessionRecord:
    id: str
    kind: str  # "browser" | "simulated"
    profile: str | None  # the browser's device profile
    joined: float  # when it started loading
    ended: float | None = None
    first_play: float | None = None  # when playback started
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (start, end) after first play
    played_s: float = 0.0  # seconds the playhead moved
    latency: list[tuple[float, float]] = field(default_factory=list)  # (t, glass-to-glass s)
    renditions: list[RenditionChange] = field(default_factory=list)  # the first pick, then each switch
    bytes: int = 0  # media (and init) bytes received
    requests: Counter = field(default_factory=Counter)  # successful requests by kind
    errors: Counter = field(default_factory=Counter)  # failed requests (or player errors) by what failed
    live_jumps: int = 0  # times it fell out of the playlist, or too far behind its edge, and jumped back to live
    error: str | None = None  # why the session ended early or never played
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def startup_s(self) -> float | None:
        return None if self.first_play is None else self.first_play - self.joined

    @property
    def media_requests(self) -> int:
        return sum(self.requests[k] for k in MEDIA_KINDS)

    def switch_to(self, t: float, name: str, bitrate: int, height: int | None) -> None:
        if not self.renditions or self.renditions[-1].name != name:
            self.renditions.append(RenditionChange(t, name, bitrate, height))
