"""What a viewer feels: real hls.js (1.7.4, the viewer page's copy) in headless Chromium plays
the live feed, and we measure startup, stalls and glass-to-glass latency.

    .venv/bin/python -m bench.bench_latency                      # ll, classic, ffmpeg; 300 s each
    .venv/bin/python -m bench.bench_latency --seconds 60         # the short run (make bench's setting)
    .venv/bin/python -m bench.bench_latency --modes ll,classic --url http://127.0.0.1:8000
    .venv/bin/python -m bench.bench_latency --modes ffmpeg,ffmpeg1 --seconds 120

Modes, one after another (orbitcast's first, then ffmpeg's, each with a fresh browser):
  ll       orbitcast's demo (started in-process once, or --url), hls.js as the viewer page sets
           it up (PLAYER_CONFIG in deployments/static/index.html: lowLatencyMode, catching
           up at up to 1.5x when it falls behind its target, back to live from 4 target
           durations behind)
  ll-defaults  the same stream, new Hls({lowLatencyMode: true}): hls.js defaults otherwise
  classic  the same stream, new Hls({lowLatencyMode: false})
  ffmpeg   the reference: Debian's ffmpeg CLI, the demo's lavfi source, libx264 veryfast
           zerolatency 2.5 Mbit/s + AAC, classic HLS in fMP4 (-hls_time --ffmpeg-segment,
           default 2 s, GOP = segment), served from a temp dir on loopback, lowLatencyMode: false
  ffmpeg1  the same with 1 s segments
Each viewer joins an established stream (the media playlist lists >= 4 segments before it starts).

Figures (per mode; samples every 250 ms in the page):
  startup          loadSource() to the video's first 'playing' event
  stalls           'waiting' events after the first 'playing'; stalled s = time until the next
                   'playing'; rebuffer = stalled s / time since the first 'playing'
  glass-to-glass   server_now - hls.playingDate (the program date-time of the frame on screen),
                   server_now = Date.now() + offset against {base}/time (the clock authority that
                   stamps the PDT; min-RTT of 10 samples, midpoint). Median/p95/min/max over the
                   samples from 5 s after the first 'playing' (startup transients excluded).
                   ffmpeg: offset 0, the host clock, from which ffmpeg (5.1: av_gettime at
                   muxer start + media time) stamps its PDT. Its publish delay (segment listed
                   after its PDT end; ~1 frame) is printed as a check of that PDT.
  hls.latency      hls.js's own estimate (live edge + playlist age - currentTime), median
  targetLatency    what hls.js aims for (LL: PART-HOLD-BACK; classic: 3 x target duration)
  behind edge      media between the playlist's live edge (parts included) and the frame on
                   screen; edge age = server_now - the edge's PDT. g2g = edge age + behind edge
  g2g drift        median of the last 10 s - of the first 10 s counted (does latency creep?)
  rate changes     'ratechange' events (hls.js only speeds up when maxLiveSyncPlaybackRate > 1)
  level            the rendition played most (share of samples) and LEVEL_SWITCHED count - 1
  parts/fragments  FRAG_LOADED with data.part set (an LL-HLS part) vs without (a whole segment)
  media clock      currentTime advanced / wall time advanced. Below 1 with no stalls: the
                   browser, most likely short of CPU, let its clock slip; hls.js defaults do
                   not catch up unless the playhead drops out of the playlist window
  timer gap        p95 / max interval between the page's 250 ms samples (late: starved page)
  frames           getVideoPlaybackQuality(): dropped / shown video frames at the end
  server           orbitcast only, from /api/feeds once a second: the encoders' lag (how far
                   behind the wall clock the newest media they made was captured; the rest of
                   the edge age is the sealed path and the replicas) and the preset they ran on
                   (overload steps), median / p95 and share of the run
  CPU, load        the whole machine's busy share during the mode, and its load average: other
                   work on the machine (and Chromium decoding 720p) shows up here
Prints a table and writes bench/results/latency-<timestamp>.json (every sample included).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.bench_live import cpu_times
from orbitcast.config import DEMO_SOURCE

ROOT = Path(__file__).resolve().parent.parent
PAGE = Path(__file__).with_name("latency_page.html")
HLS_JS = ROOT / "deployments" / "static" / "hls.min.js"
RESULTS = Path(__file__).with_name("results")
PAGE_PATH = "/bench-latency.html"  # fulfilled by Playwright: the server has no route for it
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium tries the internet, which is closed here.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required", "--mute-audio",
]
ORBITCAST_MODES = ("ll", "ll-defaults", "classic")
FFMPEG_MODES = ("ffmpeg", "ffmpeg1")
SKIP_S = 5.0  # samples this long after the first 'playing' are startup transients, not counted
WARM_SEGMENTS = 4  # a viewer joins a stream whose playlist already lists this many segments
HTTP_TIMEOUT = 10.0
VIEWER_PAGE = ROOT / "deployments" / "static" / "index.html"


def viewer_page_config() -> dict[str, Any]:
    """The hls.js settings the viewer page plays with (its PLAYER_CONFIG, written as JSON)."""
    m = re.search(r"const PLAYER_CONFIG = (\{.*?\});", VIEWER_PAGE.read_text())
    if m is None:
        raise RuntimeError(f"no PLAYER_CONFIG in {VIEWER_PAGE}")
    return json.loads(m.group(1))


def hls_config(mode: str) -> dict[str, Any]:
    if mode == "ll":
        return viewer_page_config()
    return {"lowLatencyMode": mode == "ll-defaults"}


class ModeTimeout(Exception):
    """A mode overran its hard deadline (a hung page or browser)."""


# ---------------------------------------------------------------------------------------------
# Small helpers


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def http_get(url: str, timeout: float = HTTP_TIMEOUT) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


def describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def short(text: str, limit: int = 500) -> str:
    """The first and last two non-empty lines of a (Ray) error, whose middle is a traceback:
    the full text goes to the JSON only."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 3:
        lines = [lines[0], "...", *lines[-2:]]
    out = " ".join(lines)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@contextlib.contextmanager
def hard_deadline(seconds: float) -> Iterator[None]:
    """Raise ModeTimeout in the main thread after `seconds`: Playwright's evaluate() has no
    timeout of its own, so a hung renderer would otherwise hang the benchmark."""
    def _fire(signum: int, frame: Any) -> None:
        raise ModeTimeout(f"mode overran its {seconds:.0f} s deadline")

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------
# Playlists


def media_playlist_url(master_url: str) -> str:
    """The first variant of a multivariant playlist (or the URL itself if it is a media one)."""
    text = http_get(master_url)
    if "#EXT-X-STREAM-INF" not in text:
        return master_url
    lines = [ln.strip() for ln in text.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF"):
            return urllib.request.urljoin(master_url, lines[i + 1])
    raise RuntimeError(f"no variant in {master_url}")


def playlist_tags(text: str) -> dict[str, str | int]:
    """The tags that decide where a player sits: target duration, part size, hold-backs."""
    out: dict[str, str | int] = {"segments": sum(1 for ln in text.splitlines() if ln.startswith("#EXTINF"))}
    for tag in ("#EXT-X-TARGETDURATION", "#EXT-X-PART-INF", "#EXT-X-SERVER-CONTROL", "#EXT-X-VERSION"):
        m = re.search(rf"^{tag}:(.*)$", text, re.M)
        if m:
            out[tag.removeprefix("#EXT-X-").lower()] = m.group(1).strip()
    return out


def wait_segments(media_url: str, count: int, timeout: float) -> dict[str, str | int]:
    """Block until the live media playlist lists `count` segments; returns its tags."""
    deadline = time.monotonic() + timeout
    tags: dict[str, str | int] = {}
    while time.monotonic() < deadline:
        try:
            tags = playlist_tags(http_get(media_url))
            if int(tags["segments"]) >= count:
                return tags
        except OSError:
            pass  # not serving yet
        time.sleep(0.25)
    raise RuntimeError(f"{media_url} listed {tags.get('segments', 0)} segments after {timeout:.0f} s, wanted {count}")


# ---------------------------------------------------------------------------------------------
# The ffmpeg reference origin


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with CORS and no caching of playlists (they change every segment)."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        if self.path.split("?")[0].endswith(".m3u8"):
            self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # one line per request would drown the benchmark's output


@dataclass
class FfmpegOrigin:
    base: str
    src: str
    segment: float
    command: list[str]
    publish_delay_s: list[float]  # per warm-up segment: listed at - (its PDT + duration)


def ffmpeg_command(out_dir: Path, segment: float) -> list[str]:
    fps = 30  # DEMO_SOURCE's rate
    gop = round(fps * segment)
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
        # The demo's graph: testsrc2 1280x720 30 fps on out0, a 440 Hz sine on out1; -re paces
        # it at real time as the demo's FeedActor does.
        "-re", "-f", "lavfi", "-i", DEMO_SOURCE.removeprefix("lavfi:"),
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        # 2.5 Mbit/s with the VBV orbitcast's transcoder uses (maxrate 1.2x, buffer 2x).
        "-b:v", "2500k", "-maxrate", "3000k", "-bufsize", "5000k",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",  # GOP = segment
        "-c:a", "aac", "-b:a", "128k", "-ar", "48000",
        "-f", "hls", "-hls_time", f"{segment:g}", "-hls_list_size", "6",
        "-hls_flags", "delete_segments+program_date_time+temp_file",  # temp_file: atomic writes
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(out_dir / "seg%05d.m4s"),
        str(out_dir / "index.m3u8"),
    ]


def parse_pdt_segments(text: str) -> list[tuple[str, float, float]]:
    """(uri, program date-time as epoch s, duration s) per segment of a media playlist."""
    out: list[tuple[str, float, float]] = []
    pdt: float | None = None
    dur: float | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            value = line.split(":", 1)[1].replace("Z", "+00:00")
            pdt = datetime.fromisoformat(value).timestamp()
        elif line.startswith("#EXTINF:"):
            dur = float(line.split(":", 1)[1].split(",")[0])
        elif line and not line.startswith("#"):
            if pdt is not None and dur is not None:
                out.append((line, pdt, dur))
                pdt += dur  # the next one's, unless the playlist says otherwise
            dur = None
    return out


def watch_ffmpeg_start(out_dir: Path, proc: subprocess.Popen, count: int, timeout: float) -> list[float]:
    """Poll the playlist file every 20 ms until it lists `count` segments; for each, (host time
    it appeared) - (its PDT + duration). ffmpeg closes a segment when the next keyframe arrives,
    so with zerolatency this is about one frame if its PDT is right (a check: old ffmpegs
    started the PDT at a whole second, which would show here as up to 1 s)."""
    playlist = out_dir / "index.m3u8"
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ffmpeg exited with {proc.returncode}: {tail(out_dir / 'ffmpeg.log')}")
        now = time.time()
        try:
            segments = parse_pdt_segments(playlist.read_text())
        except (OSError, ValueError):
            segments = []  # not written yet
        for uri, pdt, dur in segments:
            seen.setdefault(uri, now - (pdt + dur))
        if len(segments) >= count:
            return sorted(seen.values())
        time.sleep(0.02)
    raise RuntimeError(f"ffmpeg listed {len(seen)} segments after {timeout:.0f} s: {tail(out_dir / 'ffmpeg.log')}")


def tail(path: Path, n: int = 600) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip() or "(no output)"
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def ffmpeg_origin(segment: float, timeout: float) -> Iterator[FfmpegOrigin]:
    """ffmpeg writing classic HLS into a temp dir, served on loopback; stopped on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="orbitcast-bench-ffmpeg-"))
    (tmp / "static").mkdir()
    shutil.copy(HLS_JS, tmp / "static" / "hls.min.js")  # same path as orbitcast's, same file
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_StaticHandler, directory=str(tmp)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="ffmpeg-origin", daemon=True)
    thread.start()
    cmd = ffmpeg_command(tmp, segment)
    proc: subprocess.Popen | None = None
    try:
        with open(tmp / "ffmpeg.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        delays = watch_ffmpeg_start(tmp, proc, WARM_SEGMENTS, timeout)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        yield FfmpegOrigin(base, f"{base}/index.m3u8", segment, cmd, delays)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        server.shutdown()
        server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# One mode in the browser


@dataclass
class Target:
    mode: str
    base: str  # origin the page is served from
    src: str  # what hls.js plays
    config: dict[str, Any]  # new Hls(config)
    clock_url: str | None  # None: host clock with a fixed offset
    fixed_offset_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ServerWatch:
    """Where the server's part of the latency goes, while a mode plays (orbitcast only): once a
    second from /api/feeds, how far behind the wall clock the newest media its encoders made
    was captured (`encoders.overload.behind_s`), the preset they are on, and how old the
    newest listed segment's end is (`latency`). Player edge age minus encode lag is what the
    sealed path and the delivery replicas add."""

    def __init__(self, url: str | None, feed: str | None) -> None:
        self.url, self.feed = url, feed
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "ServerWatch":
        if self.url:
            self._thread = threading.Thread(target=self._run, name="server-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        assert self.url is not None
        while not self._stop.wait(1.0):
            try:
                body = json.loads(http_get(self.url))
            except (OSError, ValueError):
                continue
            entry = next((f for f in body.get("feeds", []) if f.get("feed") == self.feed), None)
            if entry is None:
                continue
            enc = entry.get("encoders") or {}
            overload = enc.get("overload") or {}
            self.samples.append({"t": time.time(), "behind_s": overload.get("behind_s"),
                                 "preset": overload.get("preset") or enc.get("preset"),
                                 "segment_age_s": entry.get("latency")})

    def summary(self) -> dict[str, Any]:
        presets = [x["preset"] for x in self.samples if x["preset"]]
        return {
            "encode_lag_s": stats([x["behind_s"] for x in self.samples if x["behind_s"] is not None]),
            "segment_age_s": stats([x["segment_age_s"] for x in self.samples if x["segment_age_s"] is not None]),
            "presets": {p: round(presets.count(p) / len(presets), 3) for p in sorted(set(presets))} if presets else {},
        }


def play(target: Target, seconds: float, startup_timeout: float) -> dict[str, Any]:
    """One fresh headless Chromium playing `target.src` for `seconds` (from loadSource);
    returns the page's raw record (window.bench) plus the clock offset used."""
    from playwright.sync_api import sync_playwright

    html = PAGE.read_text()
    page_url = target.base + PAGE_PATH
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            # Playwright's deadlines cover its own calls; ours covers a page that never answers.
            with hard_deadline(startup_timeout + seconds + 90):
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.route(page_url, lambda route: route.fulfill(status=200, content_type="text/html", body=html))
                page.goto(page_url, wait_until="load")
                # While any route is set Chromium's cache is off; the player runs without one.
                page.unroute(page_url)
                if not page.evaluate("!!window.Hls && Hls.isSupported()"):
                    raise RuntimeError(f"hls.js did not load from {target.base}/static/hls.min.js")
                if target.clock_url:
                    clock = page.evaluate("([u, n]) => benchClock(u, n)", [target.clock_url, 10])
                    offset = clock["offsetMs"]
                else:
                    clock, offset = None, target.fixed_offset_ms
                page.evaluate("([s, c, o]) => benchStart(s, c, o)", [target.src, target.config, offset])
                started = time.monotonic()
                follow(page, target.mode, started, seconds, startup_timeout)
                raw = json.loads(page.evaluate("JSON.stringify(window.bench)"))
                raw["endedAt"] = page.evaluate("Date.now()")
                raw["quality"] = page.evaluate(QUALITY_JS)
                raw["offsetMs"] = offset
                raw["clock"] = clock
                raw["browser"] = browser.version
                return raw
        finally:
            with contextlib.suppress(Exception):  # the driver may already be gone on Ctrl-C
                browser.close()


QUALITY_JS = """(() => { const q = document.getElementById('video').getVideoPlaybackQuality();
  return {total: q.totalVideoFrames, dropped: q.droppedVideoFrames}; })()"""
PROGRESS_JS = """(() => { const b = window.bench, s = b.samples[b.samples.length - 1] || {};
  return {first: b.firstPlayingAt, g2g: s.g2g ?? null, lat: s.latency ?? null, height: s.height ?? null,
          parts: b.frags.parts, frags: b.frags.fragments, stalls: b.waiting.length,
          fatal: b.errors.filter(e => e.fatal).map(e => e.details)}; })()"""


def follow(page: Any, mode: str, started: float, seconds: float, startup_timeout: float) -> None:
    """Wait out the mode, printing a progress line every 10 s; stop early on a fatal error."""
    next_print = started + 10
    while (now := time.monotonic()) < started + seconds:
        p = page.evaluate(PROGRESS_JS)
        if p["fatal"]:
            print(f"  {mode}: fatal hls.js error {p['fatal']}; stopping this mode", flush=True)
            return
        if p["first"] is None and now > started + startup_timeout:
            print(f"  {mode}: no 'playing' after {startup_timeout:.0f} s; stopping this mode", flush=True)
            return
        if now >= next_print:
            next_print += 10
            g2g = f"{p['g2g'] / 1000:.2f} s" if p["g2g"] is not None else "-"
            lat = f"{p['lat']:.2f} s" if p["lat"] is not None else "-"
            print(f"  {mode} t={now - started:4.0f}s  g2g={g2g}  hls.latency={lat}  {p['height']}p  "
                  f"parts={p['parts']} fragments={p['frags']} stalls={p['stalls']}", flush=True)
        time.sleep(min(1.0, max(0.05, started + seconds - time.monotonic())))


# ---------------------------------------------------------------------------------------------
# Figures


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "p95": percentile(values, 95), "min": min(values),
            "max": max(values), "n": len(values)}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """The per-mode figures from the page's raw record (times in ms, reported in s)."""
    first, load, end = raw.get("firstPlayingAt"), raw.get("loadSourceAt"), raw["endedAt"]
    out: dict[str, Any] = {
        "startup_s": (first - load) / 1000 if first and load else None,
        "played_s": (end - first) / 1000 if first else 0.0,
    }
    stalls = raw["waiting"]
    stalled_ms = sum((w["until"] or end) - w["at"] for w in stalls)
    out["stalls"] = len(stalls)
    out["stalled_s"] = stalled_ms / 1000
    out["rebuffer_ratio"] = stalled_ms / (end - first) if first and end > first else None
    counted = [s for s in raw["samples"] if first and s["t"] >= first + SKIP_S * 1000]
    pick = lambda key, scale=1.0: [s[key] * scale for s in counted if s.get(key) is not None]  # noqa: E731
    out["glass_to_glass_s"] = stats(pick("g2g", 1e-3))
    out["hls_latency_s"] = stats(pick("latency"))
    out["hls_target_latency_s"] = stats(pick("target"))
    out["behind_edge_s"] = stats(pick("behindEdge", 1e-3))
    out["edge_age_s"] = stats(pick("edgeAge", 1e-3))
    out["buffer_s"] = stats(pick("buffer"))
    out["samples_counted"] = len(counted)
    # Does latency creep up (the video clock losing time to frames it could not show in time)?
    g = [(s["t"], s["g2g"] / 1000) for s in counted if s.get("g2g") is not None]
    if g and g[-1][0] - g[0][0] >= 20_000:
        head = [v for t, v in g if t < g[0][0] + 10_000]
        tail_ = [v for t, v in g if t > g[-1][0] - 10_000]
        out["g2g_drift_s"] = statistics.median(tail_) - statistics.median(head)
    else:
        out["g2g_drift_s"] = None
    # A starved renderer plays slower than real time without a single 'waiting' event; its
    # timers fire late too. Both say "the browser, not the stream" when latency creeps.
    span = [s for s in counted if s.get("ct") is not None]
    out["media_clock_speed"] = ((span[-1]["ct"] - span[0]["ct"]) / ((span[-1]["t"] - span[0]["t"]) / 1000)
                                if len(span) > 1 and span[-1]["t"] > span[0]["t"] else None)
    gaps = [b["t"] - a["t"] for a, b in zip(counted, counted[1:])]
    out["sample_gap_ms"] = {"p95": percentile(gaps, 95), "max": max(gaps)} if gaps else None
    out["frames_total"] = (raw.get("quality") or {}).get("total")
    out["frames_dropped"] = (raw.get("quality") or {}).get("dropped")
    rates = [c["rate"] for c in raw["rateChanges"]]
    out["rate_changes"] = len(rates)
    out["rates_seen"] = sorted(set(rates) | {s["rate"] for s in counted})
    out["off_rate_share"] = sum(1 for s in counted if s["rate"] != 1) / len(counted) if counted else None
    heights = Counter(s["height"] for s in counted if s.get("height"))
    if heights:
        h, n = heights.most_common(1)[0]
        out["level_height"], out["level_share"] = h, n / sum(heights.values())
    else:
        out["level_height"], out["level_share"] = None, None
    out["heights_seen"] = dict(heights)
    out["level_switches"] = max(0, len(raw["levelSwitches"]) - 1)  # the first is the initial pick
    out["parts_loaded"] = raw["frags"]["parts"]
    out["fragments_loaded"] = raw["frags"]["fragments"]
    out["frags_by_type"] = raw["frags"]["byType"]
    out["errors"] = raw["errorCount"]
    out["fatal_errors"] = [e["details"] for e in raw["errors"] if e["fatal"]]
    out["error_kinds"] = dict(Counter(e["details"] for e in raw["errors"]))
    out["clock_offset_ms"] = raw["offsetMs"]
    out["clock_rtt_ms"] = raw["clock"]["rttMs"] if raw.get("clock") else None
    return out


def fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    g = s.get("glass_to_glass_s") or {}
    med = lambda key: fmt((s.get(key) or {}).get("median"))  # noqa: E731
    rows = [
        ("startup (loadSource to playing), s", fmt(s.get("startup_s"))),
        ("stalls after first play", fmt(s.get("stalls"), "d")),
        ("stalled, s", fmt(s.get("stalled_s"))),
        ("rebuffer ratio, %", fmt(None if s.get("rebuffer_ratio") is None else 100 * s["rebuffer_ratio"])),
        ("glass-to-glass median, s", fmt(g.get("median"))),
        ("glass-to-glass p95, s", fmt(g.get("p95"))),
        ("glass-to-glass min / max, s", f"{fmt(g.get('min'))} / {fmt(g.get('max'))}"),
        ("g2g last 10 s - first 10 s, s", fmt(s.get("g2g_drift_s"), "+.2f")),
        ("media clock, x real time", fmt(s.get("media_clock_speed"), ".3f")),
        ("hls.latency median, s", med("hls_latency_s")),
        ("hls.targetLatency median, s", med("hls_target_latency_s")),
        ("behind live edge median, s", med("behind_edge_s")),
        ("playlist edge age median, s", med("edge_age_s")),
        ("buffer ahead median, s", med("buffer_s")),
        ("playback rate changes", f"{s.get('rate_changes', 0)} ({','.join(f'{r:g}' for r in s.get('rates_seen', []))})"),
        ("level played (share)", "-" if s.get("level_height") is None else f"{s['level_height']}p ({100 * s['level_share']:.0f}%)"),
        ("level switches", fmt(s.get("level_switches"), "d")),
        ("parts / fragments loaded", f"{s.get('parts_loaded', 0)} / {s.get('fragments_loaded', 0)}"),
        ("page timer gap p95 / max, ms (250 due)",
         "-" if not s.get("sample_gap_ms") else f"{s['sample_gap_ms']['p95']:.0f} / {s['sample_gap_ms']['max']:.0f}"),
        ("video frames dropped / shown", f"{fmt(s.get('frames_dropped'), 'd')} / {fmt(s.get('frames_total'), 'd')}"),
        ("hls.js errors (fatal)", f"{s.get('errors', 0)} ({len(s.get('fatal_errors', []))})"),
        ("samples counted (after 5 s)", fmt(s.get("samples_counted"), "d")),
        ("clock offset / RTT, ms", f"{fmt(s.get('clock_offset_ms'), '.1f')} / {fmt(s.get('clock_rtt_ms'), '.1f')}"),
        ("server: encode lag median / p95, s", "-" if not (s.get("server") or {}).get("encode_lag_s") else
         f"{s['server']['encode_lag_s']['median']:.2f} / {s['server']['encode_lag_s']['p95']:.2f}"),
        ("server: encoders' preset (share)", "-" if not (s.get("server") or {}).get("presets") else
         ", ".join(f"{p} {100 * v:.0f}%" for p, v in s["server"]["presets"].items())),
        ("machine CPU busy, % of all cores", fmt(s.get("cpu_busy_pct"), ".0f")),
        ("load average (1 min) at end", fmt((s.get("loadavg_end") or [None])[0])),
    ]
    return rows


def starvation_warning(s: dict[str, Any]) -> str | None:
    """Say so when the figures measure the machine rather than the stream: a media clock slower
    than real time means Chromium was short of CPU (it drops frames and lets the clock slip
    without a 'waiting' event), and hls.js catches up only near its target latency."""
    speed = s.get("media_clock_speed")
    if speed is None or speed >= 0.995:
        return None
    return (f"WARNING the video clock ran at {speed:.3f}x real time (g2g {fmt(s.get('g2g_drift_s'), '+.2f')} s "
            f"over the run, {fmt(s.get('frames_dropped'), 'd')} frames dropped, load {fmt((s.get('loadavg_end') or [None])[0])} "
            f"on {os.cpu_count()} cores; {s.get('stalls', 0)} 'waiting' stalls, {fmt(s.get('stalled_s'), '.1f')} s): the browser "
            f"was most likely short of CPU; latency it loses beyond hls.js's catch-up range stays lost until the player is "
            f"liveMaxLatencyDurationCount target durations behind (the viewer page's: 4; hls.js's default: out of the window)")


def print_table(results: dict[str, dict[str, Any]]) -> None:
    modes = list(results)
    cols = {m: dict(table_rows(results[m]["summary"])) if "startup_s" in results[m].get("summary", {}) else {} for m in modes}
    names = [name for name, _ in table_rows({})]
    label = {m: results[m].get("label", m) for m in modes}
    w0 = max(len(n) for n in names)
    widths = {m: max(14, len(label[m]), *(len(v) for v in cols[m].values())) for m in modes}
    print()
    print(f"{'':{w0}}  " + "  ".join(f"{label[m]:>{widths[m]}}" for m in modes))
    for n in names:
        print(f"{n:{w0}}  " + "  ".join(f"{cols[m].get(n, 'failed' if n.startswith('startup') else ''):>{widths[m]}}" for m in modes))
    for m in modes:
        if results[m].get("error"):
            print(f"{m}: {short(results[m]['error'])}")
        note = results[m].get("note")
        if note:
            print(f"{m}: {note}")
        warning = starvation_warning(results[m].get("summary", {}))
        if warning:
            print(f"{m}: {warning}")


# ---------------------------------------------------------------------------------------------
# Running the modes


def measure(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """One mode: play it, summarize, note how busy the machine was; failures are recorded."""
    print(f"== {target.mode}: {target.src} (hls.js {json.dumps(target.config)})", flush=True)
    total0, idle0 = cpu_times()
    result: dict[str, Any] = {"src": target.src, "hls_config": target.config, **target.extra,
                              "loadavg_start": loadavg()}
    watch = ServerWatch(target.extra.get("feeds_url"), target.extra.get("feed"))
    try:
        with watch:
            raw = play(target, args.seconds, args.startup_timeout)
        result["summary"] = summarize(raw)
        result["raw"] = raw
        if watch.samples:
            result["summary"]["server"] = watch.summary()
            result["server_samples"] = watch.samples
        if raw.get("firstPlayingAt") is None:
            fatal = [e["details"] for e in raw["errors"] if e["fatal"]]
            result["error"] = f"never played (no 'playing' in {args.startup_timeout:g} s; fatal errors: {fatal or 'none'})"
        elif result["summary"]["fatal_errors"]:
            result["error"] = f"stopped early on a fatal hls.js error: {result['summary']['fatal_errors']}"
    except (ModeTimeout, RuntimeError, OSError) as err:
        result["error"] = describe(err)
        print(f"  {target.mode} failed: {short(result['error'])}", flush=True)
    except Exception as err:  # noqa: BLE001 - Playwright's errors: record and go on to the next mode
        if type(err).__module__.startswith("playwright"):
            result["error"] = describe(err)
            print(f"  {target.mode} failed: {short(result['error'])}", flush=True)
        else:
            raise
    total1, idle1 = cpu_times()
    busy = 100.0 * (1 - (idle1 - idle0) / max(1e-9, total1 - total0))
    result.setdefault("summary", {})
    result["summary"]["cpu_busy_pct"] = busy
    result["summary"]["loadavg_end"] = loadavg()
    return result


def run_orbitcast(modes: list[str], args: argparse.Namespace, results: dict[str, Any], meta: dict[str, Any]) -> None:
    """ll and classic against one server: --url, or the demo started here once."""
    with contextlib.ExitStack() as stack:
        if args.url:
            base = args.url.rstrip("/")
            http_get(base + "/healthz")  # fail fast, with the reason, if nothing serves there
        else:
            from bench.demo_server import running_demo

            print(f"starting the demo pipeline on port {args.port} (local Ray) ...", flush=True)
            demo = stack.enter_context(running_demo(port=args.port))
            print(f"first segment playable after {demo.startup_s:.1f} s at {demo.base}", flush=True)
            meta["demo_startup_s"] = demo.startup_s
            base = demo.base
        master = f"{base}/live/{args.feed}/master.m3u8"
        media = media_playlist_url(master)
        for mode in modes:
            # The tags (PART-HOLD-BACK, PART-INF...) explain hls.js's targetLatency.
            tags = wait_segments(media, WARM_SEGMENTS, 60)
            meta.setdefault("orbitcast_playlist", tags)
            target = Target(mode, base, master, hls_config(mode), clock_url=f"{base}/time",
                            extra={"media_playlist": media, "feeds_url": f"{base}/api/feeds", "feed": args.feed})
            results[mode] = measure(target, args)


def stop_local_ray() -> None:
    """running_demo shuts Ray down once it has yielded, but not when the pipeline fails to
    start; a Ray left running here would eat the CPU the ffmpeg reference is measured with."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            ray.shutdown()


def run_ffmpeg(mode: str, args: argparse.Namespace, results: dict[str, Any]) -> None:
    segment = 1.0 if mode == "ffmpeg1" else args.ffmpeg_segment
    print(f"starting ffmpeg ({segment:g} s segments) ...", flush=True)
    with ffmpeg_origin(segment, timeout=60 + 6 * segment) as origin:
        extra = {"ffmpeg_command": origin.command, "segment_s": segment, "container": "fMP4",
                 "publish_delay_s": origin.publish_delay_s, "playlist": playlist_tags(http_get(origin.src))}
        # Offset 0: ffmpeg stamps its PDT from this host's clock, which the page reads too.
        target = Target(mode, origin.base, origin.src, hls_config("classic"), clock_url=None, extra=extra)
        results[mode] = measure(target, args)
        results[mode]["label"] = f"{mode}({segment:g}s)"
        d = origin.publish_delay_s
        results[mode]["note"] = (f"fMP4 HLS; segments listed {1000 * min(d):.0f}-{1000 * max(d):.0f} ms after "
                                 f"their PDT end (polled every 20 ms): ffmpeg's PDT is on the host clock")


def check_tools(modes: list[str]) -> None:
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium (no Playwright browser download)")
    if any(m in FFMPEG_MODES for m in modes) and not shutil.which("ffmpeg"):
        sys.exit("ffmpeg is missing: apt-get install -y ffmpeg")
    try:
        import playwright  # noqa: F401
    except ImportError:
        sys.exit("playwright is missing: .venv/bin/pip install playwright (or -e '.[test]')")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300.0, help="per mode, from loadSource (default 300)")
    parser.add_argument("--modes", default="ll,classic,ffmpeg",
                        help="comma-separated, from ll, ll-defaults, classic, ffmpeg, ffmpeg1 (default ll,classic,ffmpeg)")
    parser.add_argument("--url", help="measure the orbitcast server at this base URL instead of starting the demo")
    parser.add_argument("--port", type=int, default=8077, help="port for the in-process demo (default 8077)")
    parser.add_argument("--feed", default="iss", help="feed to play (default iss)")
    parser.add_argument("--ffmpeg-segment", type=float, default=2.0, help="ffmpeg mode's -hls_time (default 2.0)")
    parser.add_argument("--startup-timeout", type=float, default=30.0, help="give up a mode with no 'playing' after this (default 30)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/latency-<timestamp>.json)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ORBITCAST_MODES + FFMPEG_MODES]
    if bad or not modes:
        parser.error(f"unknown mode(s) {bad}; choose from {', '.join(ORBITCAST_MODES + FFMPEG_MODES)}")
    if args.seconds <= SKIP_S or args.seconds > 3600:
        parser.error(f"--seconds must be in ({SKIP_S:g}, 3600]")
    args.modes = list(dict.fromkeys(modes))
    return args


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C: every `finally` below runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_tools(args.modes)
    signal.signal(signal.SIGTERM, _sigterm)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS / f"latency-{stamp}.json"
    meta: dict[str, Any] = {"started": stamp, "argv": sys.argv[1:], "seconds": args.seconds, "skip_s": SKIP_S,
                            "cpus": os.cpu_count(), "loadavg_start": loadavg()}
    results: dict[str, Any] = {}
    ours = [m for m in args.modes if m in ORBITCAST_MODES]
    theirs = [m for m in args.modes if m in FFMPEG_MODES]
    try:
        if ours:
            try:
                run_orbitcast(ours, args, results, meta)
            except Exception as err:  # noqa: BLE001 - no server at --url, or the demo did not start (Ray errors)
                for mode in ours:
                    results.setdefault(mode, {"error": describe(err), "summary": {}})
                print(f"  orbitcast modes failed: {short(describe(err))}", flush=True)
            finally:
                stop_local_ray()
        for mode in theirs:  # after the demo has stopped: ffmpeg gets the machine to itself
            try:
                run_ffmpeg(mode, args, results)
            except (RuntimeError, OSError) as err:
                results[mode] = {"error": describe(err), "summary": {}}
                print(f"  {mode} failed: {short(results[mode]['error'])}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: everything started here has been stopped", flush=True)
        return 130
    finally:
        if results:
            meta["loadavg_end"] = loadavg()
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"meta": meta, "modes": results}, indent=1))
    print_table(results)
    print(f"\nskipped the first {SKIP_S:g} s after first play; machine: {os.cpu_count()} cores, "
          f"load {meta['loadavg_start']} at start, {meta.get('loadavg_end')} at end")
    print(f"wrote {out}")
    failed = [m for m in results if results[m].get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
