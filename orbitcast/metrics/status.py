"""Metrics read off the status documents the HTTP API already serves, at scrape time: feeds
(`/api/feeds`), the embedded gateway's queues (its `gateway` object) and the clocks
(`/api/clock`). Each is one process's answer (the edge's health as the replica follows it,
the gateway actor, the clock authority), so nothing here is summed across replicas."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

from ..clock.disciplined import ClockState
from ..health import State
from .store import MetricStore

FEED_STATES: tuple[str, ...] = (*typing.get_args(State), "unknown")
SRT_PACKET_KINDS = ("received", "lost", "retransmitted", "dropped", "undecrypted")
CLOCK_STATES: tuple[str, ...] = tuple(s.value for s in ClockState)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def feed_families(feeds: Sequence[Mapping[str, Any]], now: float) -> dict[str, dict[str, Any]]:
    """Input state (one series per state, 1 for the current one), how far the newest media lags
    the wall clock, the slate, the input's own reconnects and retries, and an SRT link's counters."""
    store = MetricStore()
    state = store.gauge("orbitcast_feed_input_state", "1 for the feed's current input state, 0 for the others",
                        ("feed", "state"))
    lag = store.gauge("orbitcast_feed_publish_lag_seconds",
                      "Wall clock minus the end of the feed's newest published segment", ("feed",))
    slate = store.gauge("orbitcast_feed_slate", "1 while the 'signal lost' slate goes out in place of the input",
                        ("feed",))
    reconnects = store.counter("orbitcast_feed_reconnects_total", "Times a network input ended and was opened again",
                               ("feed",))
    retries = store.counter("orbitcast_feed_retries_total", "Times the input failed and was retried", ("feed",))
    renditions = store.gauge("orbitcast_feed_renditions", "Renditions the feed publishes", ("feed",))
    srt_up = store.gauge("orbitcast_feed_srt_connected", "1 while an SRT sender is connected to the feed", ("feed",))
    srt_packets = store.counter("orbitcast_feed_srt_packets_total",
                                "Data packets of the feed's SRT session by what became of them (from 0 each session)",
                                ("feed", "kind"))
    srt_rtt = store.gauge("orbitcast_feed_srt_rtt_seconds", "Round trip of the feed's SRT link", ("feed",))
    behind = store.gauge("orbitcast_feed_encode_behind_seconds",
                         "Wall clock minus the capture time of the newest media the feed's transcoder encoded", ("feed",))
    faster = store.gauge("orbitcast_feed_rungs_on_faster_preset",
                         "Rungs encoded on a faster x264 preset than the ladder's (energy plan or overload)", ("feed",))
    overloads = store.counter("orbitcast_feed_overload_steps_total",
                              "Times the feed's encoders stepped to a faster preset to keep pace", ("feed",))
    reanchors = store.counter("orbitcast_feed_date_reanchors_total",
                              "Times the feed's capture clock was set to the wall clock again after its input fell "
                              "behind (a jump in the program date-times)", ("feed",))
    for entry in feeds:
        feed = str(entry.get("feed", ""))
        current = str(entry.get("state", "unknown"))
        for name in FEED_STATES if current in FEED_STATES else (*FEED_STATES, current):
            state.set(1.0 if name == current else 0.0, feed, name)
        if (value := _number(entry.get("latency"))) is not None:
            lag.set(value, feed)
        slate.set(1.0 if entry.get("slate") else 0.0, feed)
        if (value := _number(entry.get("reconnects"))) is not None:
            reconnects.set_total(value, feed)
        if (value := _number(entry.get("retries"))) is not None:
            retries.set_total(value, feed)
        renditions.set(len(entry.get("renditions") or ()), feed)
        encoders = entry.get("encoders") or {}
        if encoders:
            faster.set(len(encoders.get("faster") or {}), feed)
        overload = encoders.get("overload") or {}
        if (value := _number(overload.get("behind_s"))) is not None:
            behind.set(value, feed)
        if (value := _number(overload.get("steps_up"))) is not None:
            overloads.set_total(value, feed)
        dates = (entry.get("input") or {}).get("dates") or {}
        if (value := _number(dates.get("reanchors"))) is not None:
            reanchors.set_total(value, feed)
        srt = (entry.get("input") or {}).get("srt")
        if srt:
            srt_up.set(1.0 if srt.get("connected") else 0.0, feed)
            for kind in SRT_PACKET_KINDS:
                if (value := _number(srt.get(f"packets_{kind}"))) is not None:
                    srt_packets.set_total(value, feed, kind)
            if (value := _number(srt.get("rtt_ms"))) is not None:
                srt_rtt.set(value / 1000, feed)
    return store.snapshot(now)["families"]


def gateway_families(status: Mapping[str, Any], now: float) -> dict[str, dict[str, Any]]:
    """The embedded gateway's queues per recipient (its `delivery_status()`); nothing when it
    did not answer."""
    store = MetricStore()
    up = store.gauge("orbitcast_gateway_up", "1 when the embedded gateway answered this scrape")
    if "recipients" not in status:
        up.set(0.0)
        return store.snapshot(now)["families"]
    up.set(1.0)
    queued = store.gauge("orbitcast_gateway_queue_depth", "Messages queued for the recipient", ("recipient",))
    retrying = store.gauge("orbitcast_gateway_retrying", "Queued messages waiting for a retry", ("recipient",))
    oldest = store.gauge("orbitcast_gateway_oldest_queued_seconds", "Age of the oldest queued message",
                         ("recipient",))
    dead = store.counter("orbitcast_gateway_dead_letters_total",
                         "Messages given up on (retry budget or age spent)", ("recipient",))
    refused = store.counter("orbitcast_gateway_refused_queue_full_total",
                            "Messages refused because the recipient's queue was full", ("recipient",))
    alarm = store.gauge("orbitcast_gateway_alarm", "1 while a recipient had a dead letter or a full queue lately")
    for recipient, entry in sorted(status["recipients"].items()):
        for gauge, key in ((queued, "queued"), (retrying, "retrying"), (oldest, "oldest_s")):
            if (value := _number(entry.get(key))) is not None:
                gauge.set(value, recipient)
        for counter, key in ((dead, "dead_letters"), (refused, "refused_queue_full")):
            if (value := _number(entry.get(key))) is not None:
                counter.set_total(value, recipient)
    alarm.set(1.0 if status.get("alarm") else 0.0)
    return store.snapshot(now)["families"]


def clock_families(status: Mapping[str, Any] | None, now: float) -> dict[str, dict[str, Any]]:
    """Per clock (the authority and every stamping actor): offset, error bound, delay, time
    since its last sync, frequency, and its state; nothing but `up` when the authority did
    not answer."""
    store = MetricStore()
    up = store.gauge("orbitcast_clock_up", "1 when the clock authority answered this scrape")
    if not status or "authority" not in status:
        up.set(0.0)
        return store.snapshot(now)["families"]
    up.set(1.0)
    labels = ("clock", "role")
    fields = {
        "offset_s": store.gauge("orbitcast_clock_offset_seconds",
                                "The clock's offset from its reference (the authority's: from its source)", labels),
        "error_bound_s": store.gauge("orbitcast_clock_error_bound_seconds",
                                     "Bound on the clock's error against its reference", labels),
        "delay_s": store.gauge("orbitcast_clock_delay_seconds", "Round-trip delay of the last exchange", labels),
        "last_sync_age_s": store.gauge("orbitcast_clock_last_sync_age_seconds", "Seconds since the last good sync",
                                       labels),
        "frequency_ppm": store.gauge("orbitcast_clock_frequency_ppm", "Frequency correction applied", labels),
    }
    state = store.gauge("orbitcast_clock_state", "1 for the clock's current state, 0 for the others",
                        ("clock", "role", "state"))
    for entry in [status["authority"], *status.get("actors", [])]:
        key = (str(entry.get("name", "")), str(entry.get("role", "")))
        for field, gauge in fields.items():
            if (value := _number(entry.get(field))) is not None:
                gauge.set(value, *key)
        current = str(entry.get("state", "unknown"))
        for name in CLOCK_STATES if current in CLOCK_STATES else (*CLOCK_STATES, current):
            state.set(1.0 if name == current else 0.0, *key, name)
    return store.snapshot(now)["families"]
