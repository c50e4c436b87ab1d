"""What `GET /api/clock` shows: one entry per clock (the authority and every stamping actor),
each with offset, delay, error bound, last sync and the state of its reference.

The authority keeps a `ClockRegistry`; every stamping actor reports its entry after each
exchange. The registry lives in the authority's memory only: after the authority restarts it
is empty until the next reports arrive, one sync interval later, which is cheaper and never
wrong, unlike a persisted list that could show actors that no longer exist.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

from .disciplined import ClockStatus
from .iso import format_iso_ms

# Keys every entry carries, so a reader (the viewer page, a test, an operator's jq) can rely
# on them whatever the role.
ENTRY_KEYS = ("name", "role", "state", "offset_s", "delay_s", "error_bound_s", "last_sync",
              "last_sync_iso", "last_sync_age_s", "frequency_ppm", "reference")


def _iso(t: float | None) -> str | None:
    return None if t is None else format_iso_ms(t)


def _clock_fields(st: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "state": st["state"],
        "offset_s": st["offset_s"],
        "delay_s": st["delay_s"],
        "error_bound_s": st["error_bound_s"],
        "last_sync": st["last_sync"],
        "last_sync_iso": _iso(st["last_sync"]),
        "last_sync_age_s": st["last_sync_age_s"],
        "frequency_ppm": st["frequency_ppm"],
        "slew_remaining_s": st["slew_remaining_s"],
        "samples": st["samples"],
        "failures": st["failures"],
        "reason": st["reason"],
    }


def client_reference(authority: str, state: str, reason: str) -> dict[str, Any]:
    """A stamping actor's reference is the authority; `state` says whether it answers:
    'ok', 'away' (no answer: dead, restarting, too slow), 'rejected' (answered, but
    unsynchronized or implausibly), 'unsynced' (not asked yet)."""
    return {"kind": "authority", "name": authority, "state": state, "reason": reason}


def client_entry(name: str, status: ClockStatus, reference: dict[str, Any], *,
                 exchanges: int, skew: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The entry a stamping actor reports after an exchange."""
    entry: dict[str, Any] = {"name": name, "role": "client",
                             **_clock_fields(status.to_dict()), "reference": reference,
                             "exchanges": exchanges}
    if skew:
        # Shown so that nobody mistakes a test's injected error for a broken host.
        entry["injected_skew"] = dict(skew)
    return entry


def authority_entry(name: str, core_status: Mapping[str, Any]) -> dict[str, Any]:
    """The authority's own entry from `orbitcast.clock.ClockAuthority.status()`: its
    disciplined clock measured against its reference (system, NTP or NMEA)."""
    entry: dict[str, Any] = {"name": name, "role": "authority",
                             **_clock_fields(core_status["clock"]),
                             "reference": dict(core_status["reference"])}
    if "ntp_server" in core_status:
        entry["ntp_server"] = dict(core_status["ntp_server"])
    return entry


class ClockRegistry:
    """The last entry each stamping actor reported, and when it arrived.

    An actor that stops reporting (dead, or its thread stuck) is kept but marked stale after
    `stale_after_s`, and dropped after `forget_after_s`: a restarted feed reports under the
    same name, so only actors that are really gone disappear.
    """

    def __init__(self, stale_after_s: float = 10.0, forget_after_s: float = 300.0) -> None:
        self.stale_after_s = stale_after_s
        self.forget_after_s = forget_after_s
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def report(self, entry: Mapping[str, Any], received: float) -> None:
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("a clock report needs a name")
        with self._lock:
            self._entries[name] = (received, dict(entry))

    def forget(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """Entries sorted by name, each with `reported_age_s` and `stale`."""
        out = []
        with self._lock:
            for name in [n for n, (t, _) in self._entries.items()
                         if now - t > self.forget_after_s]:
                del self._entries[name]
            items = sorted(self._entries.items())
        for _, (received, entry) in items:
            age = max(0.0, now - received)
            out.append({**entry, "reported_age_s": age, "stale": age > self.stale_after_s})
        return out
