"""The clock as outside clients see it on the live pipeline: GET /time (DASH http-iso),
GET /api/clock, the authority's UDP NTP server through ntplib, and program date-times in the
playlists that every rung shares."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import m3u8
import ntplib
import pytest

from orbitcast.clock.iso import parse_iso

from tests.hls import whole_segments

pytestmark = pytest.mark.e2e

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
FEEDS = ("synth", "file", "broken")


def test_time_is_iso8601_utc_with_ms_close_to_ours(live):
    for _ in range(5):
        before = time.time()
        r = live.get("/time")
        after = time.time()
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert "no-store" in r.headers.get("cache-control", "")
        text = r.text.strip()
        assert ISO_MS.match(text), text
        t = parse_iso(text)
        # The authority follows this host's clock; its answer was read between our two
        # reads and truncated to the millisecond (never rounded into the future).
        assert before - 0.005 <= t <= after + 0.001, (before, text, after)


def test_api_clock_lists_the_authority_and_every_feed_clock(live):
    deadline = time.monotonic() + 15
    while True:
        r = live.get("/api/clock")
        assert r.status_code == 200, r.text
        body = r.json()
        names = {e["name"] for e in body["actors"]}
        if {f"feed:{f}" for f in FEEDS} <= names or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    auth = body["authority"]
    assert auth["role"] == "authority" and auth["name"] == "orbitcast-clock"
    assert auth["state"] == "synced"
    assert auth["reference"]["kind"] == "system" and auth["reference"]["state"] == "ok"
    assert auth["stratum"] == live.config.clock.local_stratum
    assert auth["ntp_server"]["port"] == live.config.clock.ntp_port
    assert ISO_MS.match(body["now_iso"])
    by_name = {e["name"]: e for e in body["actors"]}
    for feed in FEEDS:  # a failed feed still keeps its clock
        e = by_name[f"feed:{feed}"]
        assert e["role"] == "client" and e["state"] == "synced", e
        assert e["reference"]["kind"] == "authority" and e["reference"]["state"] == "ok", e
        # Plausibility only: these clocks share the host's clock, and under a busy pipeline one
        # exchange can be a few ms lopsided. The 1 ms residual is tested with skew injection in
        # tests/integration/test_clock_ray.py.
        assert e["offset_s"] is not None and abs(e["offset_s"]) < 0.05, e
        assert e["delay_s"] is not None and 0 <= e["delay_s"] < 0.1, e
        assert e["error_bound_s"] is not None and 0 < e["error_bound_s"] < 0.05, e
        assert e["last_sync"] is not None and ISO_MS.match(e["last_sync_iso"]), e
        assert e["last_sync_age_s"] < 5 * live.config.clock.sync_interval_s + 1, e
        assert not e["stale"], e


def test_ntplib_gets_the_authority_time_from_the_pipeline(live):
    port = live.config.clock.ntp_port
    r = ntplib.NTPClient().request("127.0.0.1", port=port, version=4, timeout=2)
    assert abs(r.offset) < 5e-3, r.offset
    assert r.stratum == live.config.clock.local_stratum
    assert r.leap == 0


def test_program_date_time_is_the_same_in_every_rung_and_recent(live):
    live.wait_media("synth", 8)
    rungs = [r.name for r in live.config.ladder.rungs]
    pdts: dict[str, dict[str, datetime]] = {}
    for name in rungs:
        pl = m3u8.loads(live.get(f"/live/synth/{name}/index.m3u8").text)
        pdts[name] = {s.uri: s.program_date_time for s in whole_segments(pl)}
        assert all(p is not None and p.tzinfo is not None for p in pdts[name].values())
    common = set.intersection(*(set(v) for v in pdts.values()))
    assert len(common) >= 2
    for uri in common:
        assert len({pdts[name][uri] for name in rungs}) == 1, (uri, {n: pdts[n][uri] for n in rungs})
    # Stamped by the feed's disciplined clock: the newest segment began a few seconds ago
    # by the authority's own /time.
    now = parse_iso(live.get("/time").text)
    newest = max(p for v in pdts.values() for p in v.values()).astimezone(timezone.utc)
    age = now - newest.timestamp()
    assert 0 < age < 6 * live.config.segment_duration, age
