"""One playtest: browsers and simulated viewers playing one URL for a while, in one asyncio
loop, then the report (report.json, report.html, plots, P.1203 inputs) written to a folder.

Browsers start at once; simulated viewers join evenly over the ramp, so the run sweeps the
number of viewers (the stalls plot reads it). Everyone plays until the run's end.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from . import clock as authority
from .browser import BrowserSessions, BrowserSetup, RunClock
from .errors import PlaytestError
from .p1203 import mode0_input
from .playlist import PlaylistCache
from .plots import write_html, write_plots
from .profiles import Profile, assign
from .report import build_report, percentile, table
from .session import SessionRecord
from .simviewer import REQUEST_TIMEOUT_S, SimulatedViewer, ViewerOptions

MAX_SECONDS = 24 * 3600
CONNECTIONS_PER_VIEWER = 6  # as a browser keeps per host


@dataclass
class PlaytestOptions:
    url: str
    seconds: float = 60.0
    viewers: int = 0
    browsers: int = 0
    profiles: str | None = None  # comma-separated; default: the four named profiles in turn
    out: Path = Path("playtest/report.json")
    max_stall_ratio: float | None = None
    max_latency: float | None = None  # seconds, p95
    ramp: float | None = None  # seconds over which simulated viewers join; default min(30, seconds / 4)
    viewer: ViewerOptions = field(default_factory=ViewerOptions)
    browser: BrowserSetup | None = None  # needed when browsers > 0
    audio_kbps: float = 128.0  # for the P.1203 inputs (orbitcast's default ladder.audio_bitrate)
    quality: dict[str, Any] | None = None  # `orbitcast quality --json` results (docs/quality.md)
    progress: Callable[[str], None] | None = None

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PlaytestError(f"URL {self.url!r} is not an http(s) URL of a playlist")
        if not 0 < self.seconds <= MAX_SECONDS:
            raise PlaytestError(f"--seconds must be in (0, {MAX_SECONDS}]")
        if self.viewers < 0 or self.browsers < 0:
            raise PlaytestError("--viewers and --browsers cannot be negative")
        if self.viewers + self.browsers == 0:
            raise PlaytestError("nothing to play: give --viewers and/or --browsers")
        if self.max_stall_ratio is not None and not 0 <= self.max_stall_ratio <= 1:
            raise PlaytestError("--max-stall-ratio must be in [0, 1]")
        if self.max_latency is not None and self.max_latency <= 0:
            raise PlaytestError("--max-latency must be positive")
        if self.ramp is not None and not 0 <= self.ramp < self.seconds:
            raise PlaytestError("--ramp must be in [0, --seconds)")
        if self.browsers and self.browser is None:
            raise PlaytestError("browsers need a BrowserSetup (Chromium and hls.js)")

    @property
    def report_path(self) -> Path:
        return self.out if self.out.suffix == ".json" else self.out / "report.json"

    @property
    def ramp_s(self) -> float:
        return self.ramp if self.ramp is not None else min(30.0, self.seconds / 4)


def run_playtest(options: PlaytestOptions) -> dict[str, Any]:
    """Run it, write the report files; the report."""
    options.check()
    profiles = assign(options.profiles, options.browsers)
    return asyncio.run(_run(options, profiles))


async def _run(options: PlaytestOptions, profiles: list[Profile]) -> dict[str, Any]:
    say = options.progress or (lambda line: None)
    folder = options.report_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    async with aiohttp.ClientSession() as http:
        try:
            async with http.get(options.url, timeout=aiohttp.ClientTimeout(total=15)) as r:
                head = await r.text()
                if r.status != 200 or not head.startswith("#EXTM3U"):
                    raise PlaytestError(f"{options.url} answered {r.status}, not a playlist")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise PlaytestError(f"cannot load {options.url}: {type(err).__name__} {err}") from None
        clock = await authority.measure(http, options.url)
    say(f"clock: {clock.source}, offset {clock.offset_s:+.4f} s"
        + (f" (round trip {clock.rtt_s * 1000:.1f} ms)" if clock.rtt_s is not None else ""))
    sessions = [(f"b{i}", p) for i, p in enumerate(profiles)]
    if sessions:
        say(f"starting Chromium: {len(sessions)} page(s), profiles {', '.join(p.name for p in profiles)}")
    async with BrowserSessions(options.browser, sessions, options.url) as browsers:
        run = RunClock(time.monotonic(), time.time())  # the run starts once the browsers are ready
        deadline = run.mono0 + options.seconds
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        viewers: list[SimulatedViewer] = []
        cache = PlaylistCache()
        lag: list[float] = []

        async def viewer(i: int) -> SessionRecord:
            await asyncio.sleep(max(0.0, run.mono0 + options.ramp_s * i / max(1, options.viewers) - time.monotonic()))
            connector = aiohttp.TCPConnector(limit=CONNECTIONS_PER_VIEWER)
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as h:
                v = SimulatedViewer(f"v{i:03d}", options.url, h, clock, run.mono0, options.viewer, cache)
                viewers.append(v)
                return await v.run(deadline)

        async def watch() -> None:
            """Event-loop lag (a starved client shows up here, not as the server's fault) and a
            progress line every 10 s."""
            next_line = run.mono0 + 10
            while True:
                t0 = time.monotonic()
                await asyncio.sleep(0.1)
                lag.append(time.monotonic() - t0 - 0.1)
                if time.monotonic() >= next_line:
                    next_line += 10
                    playing = sum(1 for v in viewers if v.buffer is not None and v.buffer.playing)
                    stalls = sum(len(v.buffer.stalls) for v in viewers if v.buffer is not None)
                    say(f"t={run.t():5.0f}s  simulated playing {playing}/{len(viewers)}  stalls {stalls}")

        watcher = asyncio.create_task(watch())
        try:
            browser_records, *sim_records = await asyncio.gather(
                browsers.play(clock, run, deadline), *(viewer(i) for i in range(options.viewers)))
        finally:
            watcher.cancel()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    records: list[SessionRecord] = [*browser_records, *sim_records]
    meta = {
        "url": options.url, "started": started, "seconds": options.seconds, "viewers": options.viewers,
        "browsers": len(sessions), "profiles": [p.name for p in profiles], "ramp_s": options.ramp_s,
        "viewer_options": {"low_latency": options.viewer.low_latency, "preload_hints": options.viewer.preload_hints,
                           "max_rate": options.viewer.max_rate},
        "player_config": options.browser.player_config if options.browser else None,
        "clock": {"source": clock.source, "offset_s": round(clock.offset_s, 6),
                  "rtt_s": None if clock.rtt_s is None else round(clock.rtt_s, 6)},
        "client": {"cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
                   "cpus": os.cpu_count(), "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                   "loop_lag_ms": {"p95": round(1000 * percentile(lag, 95), 1), "max": round(1000 * max(lag), 1)} if lag else None},
    }
    report = build_report(meta, records, options.max_stall_ratio, options.max_latency)
    if options.quality is not None:
        from ..quality import for_playtest

        report["quality"] = for_playtest(options.quality, report["sessions"])
    files = _write_files(report, records, viewers, options, profiles, folder)
    report["files"] = files
    options.report_path.write_text(json.dumps(report, indent=1))
    return report


def _write_files(report: dict[str, Any], records: list[SessionRecord], viewers: list[SimulatedViewer],
                 options: PlaytestOptions, profiles: list[Profile], folder: Path) -> dict[str, Any]:
    files: dict[str, Any] = {"json": options.report_path.name, "p1203": []}
    by_name = {f"b{i}": p for i, p in enumerate(profiles)}
    summaries = {s["id"]: s for s in report["sessions"]}
    for rec in records:
        if rec.kind != "browser" or "_frags" not in rec.extra:
            continue
        prof = by_name[rec.id]
        # P.1203 places a stall on the media timeline: where the playhead stood when it began
        stalls = [(w.get("ct") or 0.0, b - a) for w, (a, b) in zip(rec.extra["_waiting"], rec.stalls)]
        data = mode0_input(rec.extra.get("levels", []), rec.extra["_frags"], rec.startup_s, stalls,
                           prof.device, prof.display, options.audio_kbps)
        name = f"p1203-{rec.id}.json"
        (folder / name).write_text(json.dumps(data, indent=1))
        files["p1203"].append(name)
        summaries[rec.id]["extra"]["p1203"] = name
    if options.viewer.log_requests:
        with open(folder / "requests.jsonl", "w") as out:
            for v in viewers:
                for entry in v.log:
                    out.write(json.dumps(entry) + "\n")
        files["requests"] = "requests.jsonl"
    try:
        plots = write_plots(report, folder)
    except PlaytestError as err:  # matplotlib missing: the JSON still tells everything
        print(f"orbitcast playtest: {err}", file=sys.stderr)
        plots = []
    files["plots"] = [p.name for p in plots]
    html_path = folder / (options.report_path.stem + ".html")
    write_html(report, html_path, plots)
    files["html"] = html_path.name
    return files
