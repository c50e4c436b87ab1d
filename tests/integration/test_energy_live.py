"""Energy accounting in the shared live pipeline: recent catalog rows carry joules with their
source and error, and /api/energy shows watts per feed and rung."""

from __future__ import annotations

import time

import pytest

from orbitcast.catalog import Catalog
from orbitcast.store import Store

pytestmark = pytest.mark.ray


def test_recent_catalog_rows_carry_joules_source_and_error(live):
    live.wait_media("synth", 8)
    live.pipeline.flush_catalogs()
    table = Catalog(Store(live.config.store)).query("synth", columns=["rendition", "seq", "joules", "energy_source",
                                                                       "energy_error"])
    rungs = [r.name for r in live.config.ladder.rungs]
    for rung in rungs:
        rows = [r for r in table.to_pylist() if r["rendition"] == rung][-5:]
        assert len(rows) == 5, rung
        for r in rows:
            assert r["joules"] is not None and r["joules"] > 0, r
            assert r["energy_source"] in ("rapl", "model"), r
            assert 0 < r["energy_error"] <= r["joules"] * 0.5 + 1e-9, r  # 5 % (RAPL) .. 50 % (the seed model)


def test_api_energy_shows_watts_per_feed_and_rung(live):
    live.wait_media("synth", 8)
    rungs = [r.name for r in live.config.ladder.rungs]
    deadline = time.monotonic() + 30
    while True:
        body = live.get("/api/energy").json()
        synth = body["feeds"].get("synth", {}).get("rungs", {})
        if all(synth.get(r, {}).get("joules_per_media_s") for r in rungs) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert body["enabled"] is True and body["source"] in ("rapl", "model")
    for r in rungs:
        assert synth[r]["watts"] > 0 and synth[r]["joules_per_media_s"] > 0 and synth[r]["segments"] > 0, (r, synth)
    # the top rung costs more than the bottom one (640x360 against 426x240)
    assert synth[rungs[0]]["watts"] > synth[rungs[-1]]["watts"]
    assert body["transcoding_w"] >= body["feeds"]["synth"]["watts"] > 0
    assert body["sci"]["g_per_hour"] > 0 and body["plan"] is None  # no energy.site in the test config
    # each feed's own figure: part of the whole, its viewers counted by feed
    per_feed = body["feeds"]["synth"]["sci"]
    assert 0 < per_feed["g_per_hour"] and isinstance(per_feed["viewers"], int)
    assert sum(f["sci"]["g_per_hour"] for f in body["feeds"].values()) <= body["sci"]["g_per_hour"] * (1 + 1e-9)
    stated = live.get("/api/energy?viewers=10").json()
    assert stated["feeds"]["synth"]["sci"]["viewers"] is None  # a stated audience is not split by feed
    assert stated["viewers"]["count"] == 10
    assert stated["sci"]["g_per_viewer_hour"] == pytest.approx(stated["sci"]["g_per_hour"] / 10)
    bad = live.get("/api/energy?viewers=-3")
    assert bad.status_code == 400 and "viewers" in bad.json()["error"]
