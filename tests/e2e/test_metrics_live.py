"""GET /metrics on the live pipeline, read by prometheus_client's parser: every part of the
pipeline reports, counters rise while it runs, and a player that sends CMCD (as hls.js does with
the viewer page's settings) is counted as a viewer with its buffer level. And Debian's
Prometheus scrapes it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import m3u8
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port

pytestmark = pytest.mark.e2e
Samples = dict[str, dict[tuple, float]]


def scrape(live) -> Samples:
    r = live.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if want <= set(k))


def wait_for(live, check, timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        got = scrape(live)
        if check(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"/metrics never satisfied the check: {sorted(got)}")
        time.sleep(0.5)


def test_every_part_reports_and_counters_rise(live) -> None:
    live.wait_media("synth", 4)
    feeds = [f.name for f in live.config.feeds]
    first = wait_for(live, lambda s: total(s, "orbitcast_metrics_sources", component="packager") == len(feeds)
                     and total(s, "orbitcast_parts_published_total", feed="synth") > 0
                     and total(s, "orbitcast_ledger_leaves", feed="synth") > 0)
    assert total(first, "orbitcast_metrics_hub_up") == 1
    assert total(first, "orbitcast_metrics_sources", component="edge") == 1
    assert total(first, "orbitcast_metrics_sources", component="delivery") >= 1
    time.sleep(4)  # two report rounds
    second = scrape(live)

    def rose(name: str, **labels: str) -> None:
        before, after = total(first, name, **labels), total(second, name, **labels)
        assert after > before, f"{name}{labels}: {before} -> {after}"

    for rung in live.config.ladder.rungs:
        rose("orbitcast_parts_published_total", feed="synth", rendition=rung.name)
        rose("orbitcast_segments_published_total", feed="synth", rendition=rung.name)
        rose("orbitcast_published_bytes_total", feed="synth", rendition=rung.name, kind="part")
        # the measured bitrate is in the rung's neighbourhood (test pattern, short segments)
        bitrate = total(second, "orbitcast_rendition_bitrate_bps", feed="synth", rendition=rung.name)
        assert rung.video_bitrate / 10 < bitrate < rung.video_bitrate * 10
    rose("orbitcast_ledger_leaves", feed="synth")
    # energy (energy.enabled in the test config): joules per rung rise, watts are there
    for rung in live.config.ladder.rungs:
        rose("orbitcast_energy_joules_total", feed="synth", rendition=rung.name)
        assert total(second, "orbitcast_energy_watts", feed="synth", rendition=rung.name) > 0
    assert total(second, "orbitcast_metrics_sources", component="transcoder") >= 1
    rose("orbitcast_seal_seconds_count", feed="synth", kind="part")
    rose("orbitcast_part_listed_latency_seconds_count")
    rose("orbitcast_edge_messages_total", result="accepted")
    rose("orbitcast_http_requests_total", kind="other", status="200")  # the scrapes themselves
    # a part reaches a replica in a fraction of a second (docs/delivery.md: p99 72 ms on the demo)
    hops = total(second, "orbitcast_part_listed_latency_seconds_count")
    assert total(second, "orbitcast_part_listed_latency_seconds_bucket", le="2.0") >= 0.9 * hops

    # input state: one state per feed, the synthetic one live, the corrupt one not
    for feed in feeds:
        assert total(second, "orbitcast_feed_input_state", feed=feed) == 1, feed
    assert total(second, "orbitcast_feed_input_state", feed="synth", state="live") == 1
    assert total(second, "orbitcast_feed_input_state", feed="broken", state="live") == 0
    # the clock authority and the embedded gateway answered
    assert total(second, "orbitcast_clock_up") == 1
    assert ("orbitcast_clock_error_bound_seconds" in second
            and any(("role", "authority") in k for k in second["orbitcast_clock_error_bound_seconds"]))
    assert total(second, "orbitcast_gateway_up") == 1
    assert "orbitcast_gateway_queue_depth" in second


def next_part(text: str) -> tuple[int, int]:
    seq, index, _ = m3u8.loads(text).preload_hint.uri.split(".")
    return int(seq), int(index)


def play_ll_hls(live, feed: str, rung: str, headers: dict[str, str], reloads: int = 8) -> None:
    """A low-latency player's playlist loop, as hls.js runs it: a blocking reload for the next
    part, again and again. Viewers at the live edge ask for each part before it exists, so the
    replica holds their requests (a cache has no answer for them yet)."""
    r = live.get(f"/live/{feed}/{rung}/index.m3u8", headers=headers)
    assert r.status_code == 200
    for _ in range(reloads):
        msn, part = next_part(r.text)
        r = live.get(f"/live/{feed}/{rung}/index.m3u8", params={"_HLS_msn": msn, "_HLS_part": part}, headers=headers)
        assert r.status_code == 200


def test_players_sending_cmcd_are_counted_as_viewers(live) -> None:
    feed, rung = "file", live.config.ladder.rungs[-1].name
    live.wait_media(feed, 3)
    before = scrape(live)
    # three players with hls.js's settings (`cmcd: {useHeaders: true}`), watching together
    players = [{"CMCD-Session": f'cid="{feed}",sf=h,sid="{uuid.uuid4()}",st=l',
                "CMCD-Request": f"bl={1500 + 100 * i},mtp=8000", "CMCD-Object": "ot=m"} for i in range(3)]
    with ThreadPoolExecutor(len(players)) as pool:
        list(pool.map(lambda headers: play_ll_hls(live, feed, rung, headers), players))
    # the query form (another player's choice): accepted, the answer unchanged
    query_sid = str(uuid.uuid4())
    msn, part = next_part(live.get(f"/live/{feed}/{rung}/index.m3u8").text)
    cmcd = quote(f'bl=900,ot=m,sid="{query_sid}"', safe="")
    r = live.get(f"/live/{feed}/{rung}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}&CMCD={cmcd}")
    assert r.status_code == 200 and f"{msn}.{part}.m4s" in r.text
    # garbage (on the reload for the part after that one, which no one has asked for yet, so
    # it reaches a replica): still answered, ignored and counted
    msn, part = next_part(r.text)
    r = live.get(f"/live/{feed}/{rung}/index.m3u8", params={"_HLS_msn": msn, "_HLS_part": part},
                 headers={"CMCD-Session": 'sid="unterminated', "CMCD-Request": "bl=soon"})
    assert r.status_code == 200

    def counted(s: dict) -> bool:
        # each replica reports every 2 s, and the requests went to either of them
        return (total(s, "orbitcast_viewers", feed=feed) >= total(before, "orbitcast_viewers", feed=feed) + 4
                and total(s, "orbitcast_viewer_buffer_seconds_count") >= total(before, "orbitcast_viewer_buffer_seconds_count") + 4
                and total(s, "orbitcast_cmcd_requests_total", via="query") >= total(before, "orbitcast_cmcd_requests_total", via="query") + 1
                and total(s, "orbitcast_cmcd_invalid_total") >= total(before, "orbitcast_cmcd_invalid_total") + 1)

    wait_for(live, counted, timeout=15)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
                "--mute-audio"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_the_viewer_pages_hls_js_is_counted_with_its_buffer(live) -> None:
    from playwright.sync_api import sync_playwright

    feed = "synth"
    live.wait_media(feed, 4)
    before = scrape(live)
    sent: list[tuple[str, dict[str, str]]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda req: sent.append((req.url, req.headers)) if "/live/" in req.url else None)
            page.goto(f"{live.base}/?feed={feed}")
            page.wait_for_function("() => document.querySelector('video').currentTime > 3", timeout=60_000)
            after = wait_for(live, lambda s: total(s, "orbitcast_viewers", feed=feed)
                             >= total(before, "orbitcast_viewers", feed=feed) + 1, timeout=15)
        finally:
            browser.close()
    # hls.js sent CMCD in headers (the page's `cmcd: {useHeaders: true}`), one session id
    sessions = {h.get("cmcd-session", "") for _, h in sent}
    sids = {v.split('sid="', 1)[1].split('"', 1)[0] for v in sessions if 'sid="' in v}
    assert len(sids) == 1, sent[:3]
    assert any("bl=" in h.get("cmcd-request", "") for _, h in sent), sent[:3]
    assert not any("CMCD=" in url for url, _ in sent)  # the URLs stay the same for every viewer
    assert total(after, "orbitcast_viewer_buffer_seconds_count") > total(before, "orbitcast_viewer_buffer_seconds_count")


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus is not installed (make system-deps)")
def test_prometheus_scrapes_the_pipeline(live, tmp_path: Path) -> None:
    port = free_port()
    target = live.base.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: orbitcast\n    static_configs:\n      - targets: ['{target}']\n")
    server = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    api = f"http://127.0.0.1:{port}/api/v1/query"

    def query(expr: str) -> list[dict]:
        r = requests.get(api, params={"query": expr}, timeout=5)
        r.raise_for_status()
        return r.json()["data"]["result"]

    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                rates = query('rate(orbitcast_parts_published_total{feed="synth"}[5s])')
                up = query('up{job="orbitcast"}')
            except requests.RequestException:
                rates, up = [], []
            if up and float(up[0]["value"][1]) == 1 and rates and all(float(r["value"][1]) > 0 for r in rates):
                break
            assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else ""
            assert time.monotonic() < deadline, f"Prometheus did not ingest /metrics: up={up} rates={rates}"
            time.sleep(1)
        # parts per second per rung: about 1 / part_duration while the feed plays
        for r in rates:
            assert 0.2 / live.config.part_duration < float(r["value"][1]) < 3 / live.config.part_duration, r
        # a histogram Prometheus can take quantiles of
        p99 = query("histogram_quantile(0.99, sum by (le) (orbitcast_part_listed_latency_seconds_bucket))")
        assert p99 and 0 < float(p99[0]["value"][1]) < 5
        # every query of the Grafana dashboard is valid PromQL over these series
        dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        answered = [e for e in exprs if query(e)]
        assert len(answered) >= len(exprs) // 2, set(exprs) - set(answered)
    finally:
        server.terminate()
        server.wait(10)
