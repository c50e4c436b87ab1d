"""Real players: hls.js (the viewer page's copy, with its settings) in headless Chromium, one
page per session, driven from the playtest's event loop with Playwright's async API. Debian's
Chromium is used (`executable_path`), never a downloaded one. Each page gets its device profile
through the DevTools protocol before hls.js starts: Network.emulateNetworkConditions (downlink,
uplink, added round trip; stepped over the run for `stairs`) and Emulation.setCPUThrottlingRate.

The page (page.html) is answered by Playwright at a path of the stream's origin that the server
has no route for, so the stream, `/time` and the page share one origin and the page needs
nothing from the server but the stream.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .clock import AuthorityClock
from .errors import PlaytestError
from .profiles import Profile
from .session import SessionRecord

PAGE = Path(__file__).with_name("page.html")
PAGE_PATH = "/__orbitcast_playtest__/{id}.html"
# Without the background-networking flags Chromium tries to reach Google on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
                 "--mute-audio"]
DEFAULT_PLAYER_CONFIG: dict[str, Any] = {"lowLatencyMode": True}
QUALITY_JS = """() => { const q = document.getElementById('video').getVideoPlaybackQuality();
  return {total: q.totalVideoFrames, dropped: q.droppedVideoFrames}; }"""


def find_chromium(path: str | None = None) -> str:
    """The Chromium to drive: `path`, else Debian's on PATH. PlaytestError when there is none."""
    found = path or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        raise PlaytestError("no Chromium found: apt-get install chromium (Playwright's own browsers are not used), "
                            "or pass --chromium PATH")
    return found


def viewer_page_config(index_html: str) -> dict[str, Any]:
    """The hls.js settings of the viewer page (its `const PLAYER_CONFIG = {...};`), or
    lowLatencyMode alone when the page does not write them that way."""
    m = re.search(r"const PLAYER_CONFIG = (\{.*?\});", index_html)
    if m is None:
        return dict(DEFAULT_PLAYER_CONFIG)
    try:
        return json.loads(m.group(1))
    except json.JSONDecodeError:
        return dict(DEFAULT_PLAYER_CONFIG)


def player_config_json(text: str) -> dict[str, Any]:
    """hls.js settings given on the command line: a JSON object (PlaytestError otherwise)."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlaytestError(f"--player-config is not JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(config, dict):
        raise PlaytestError("--player-config must be a JSON object of hls.js settings")
    return config


def page_html(hls_js: str) -> str:
    # "</script" inside the inlined library would end its <script> element early.
    return PAGE.read_text().replace("/*HLS_JS*/", hls_js.replace("</script", "<\\/script"), 1)


@dataclass
class BrowserSetup:
    chromium: str
    hls_js: str  # the library's text
    player_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PLAYER_CONFIG))


@dataclass(frozen=True)
class RunClock:
    """The run's clock: seconds since it started, from monotonic time or from host epoch ms."""

    mono0: float
    wall0: float

    def t(self) -> float:
        return time.monotonic() - self.mono0

    def from_ms(self, ms: float) -> float:
        return ms / 1000 - self.wall0


@dataclass
class _Page:
    id: str
    profile: Profile
    record: SessionRecord
    context: Any = None
    page: Any = None
    cdp: Any = None


class BrowserSessions:
    """One Chromium with a page per (id, profile), made ready before the run starts (Chromium
    takes seconds to start on a busy machine, which is not the stream's startup): hls.js
    loaded, the profile applied. `play` then starts every player at once.

        async with BrowserSessions(setup, sessions, url) as browsers:
            records = await browsers.play(clock, run, deadline)
    """

    def __init__(self, setup: BrowserSetup | None, sessions: list[tuple[str, Profile]], url: str) -> None:
        if sessions and setup is None:
            raise PlaytestError("browsers need a BrowserSetup (Chromium and hls.js)")
        self.setup = setup
        self.url = url
        self.pages = [_Page(sid, prof, SessionRecord(sid, "browser", prof.name, 0.0)) for sid, prof in sessions]
        self._pw: Any = None
        self._browser: Any = None

    async def __aenter__(self) -> "BrowserSessions":
        if not self.pages:
            return self
        try:
            from playwright.async_api import async_playwright
        except ImportError:
            raise PlaytestError("browsers need Playwright: pip install 'orbitcast[playtest]'") from None
        assert self.setup is not None
        self._pw = await async_playwright().start()
        try:
            self._browser = await self._pw.chromium.launch(executable_path=self.setup.chromium, headless=True,
                                                           args=CHROMIUM_ARGS, timeout=60_000)
        except Exception as err:  # noqa: BLE001 - Playwright's launch errors carry a long log
            await self._pw.stop()
            raise PlaytestError(f"Chromium did not start: {str(err).splitlines()[0]}") from None
        html = page_html(self.setup.hls_js)
        await asyncio.gather(*(self._prepare(p, html) for p in self.pages))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._browser is not None:
            try:
                await self._browser.close()
            except Exception:  # noqa: BLE001 - already gone (Ctrl-C)
                pass
        if self._pw is not None:
            await self._pw.stop()

    async def _prepare(self, p: _Page, html: str) -> None:
        prof, rec = p.profile, p.record
        rec.extra["profile"] = {"down_bps": prof.network.down_bps, "up_bps": prof.network.up_bps,
                                "rtt_ms": prof.network.rtt_ms, "cpu_slowdown": prof.cpu_slowdown}
        try:
            async with asyncio.timeout(90):
                p.context = await self._browser.new_context()
                page = p.page = await p.context.new_page()
                page.set_default_timeout(30_000)
                parts = urlsplit(self.url)
                page_url = f"{parts.scheme}://{parts.netloc}{PAGE_PATH.format(id=p.id)}"
                await page.route(page_url, lambda route: route.fulfill(status=200, content_type="text/html", body=html))
                await page.goto(page_url, wait_until="load")
                await page.unroute(page_url)  # while any route is set, Chromium's cache is off
                if not await page.evaluate("!!window.Hls && Hls.isSupported()"):
                    raise PlaytestError("hls.js did not load in the page (or MSE is missing)")
                p.cdp = await p.context.new_cdp_session(page)
                await p.cdp.send("Network.enable")
                await p.cdp.send("Network.emulateNetworkConditions", prof.at(0).cdp())
                if prof.cpu_slowdown != 1:
                    await p.cdp.send("Emulation.setCPUThrottlingRate", {"rate": prof.cpu_slowdown})
        except TimeoutError:
            rec.error = "the page did not get ready in 90 s"
        except PlaytestError as err:
            rec.error = str(err)
        except Exception as err:  # noqa: BLE001 - Playwright's errors end this session, not the run
            if not type(err).__module__.startswith("playwright"):
                raise
            rec.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"

    async def play(self, clock: AuthorityClock, run: RunClock, deadline: float,
                   player_config: dict[str, Any] | None = None) -> list[SessionRecord]:
        """Play the URL in every ready page until `deadline` (monotonic); the records."""
        config = player_config or (self.setup.player_config if self.setup else DEFAULT_PLAYER_CONFIG)
        return list(await asyncio.gather(*(self._play(p, clock, run, deadline, config) for p in self.pages)))

    async def _play(self, p: _Page, clock: AuthorityClock, run: RunClock, deadline: float,
                    config: dict[str, Any]) -> SessionRecord:
        rec = p.record
        rec.joined = run.t()
        if rec.error is not None:
            rec.ended = run.t()
            return rec
        stairs: asyncio.Task | None = None
        try:
            # A page that hangs must not hold the run: Playwright's evaluate() has no timeout.
            async with asyncio.timeout(max(1.0, deadline - time.monotonic()) + 60):
                rec.extra["network"] = [(round(run.t(), 3), p.profile.at(0).down_bps)]
                if p.profile.stairs:
                    stairs = asyncio.create_task(_stairs(p.cdp, p.profile, run, deadline, rec))
                await p.page.evaluate("([s, c, o]) => ptStart(s, c, o)", [self.url, config, clock.offset_s * 1000])
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                raw = json.loads(await p.page.evaluate("JSON.stringify(window.pt)"))
                raw["endedAt"] = await p.page.evaluate("Date.now()")
                raw["quality"] = await p.page.evaluate(QUALITY_JS)
            _fill(rec, raw, run)
        except TimeoutError:
            rec.error = "the page stopped answering"
        except Exception as err:  # noqa: BLE001 - Playwright's errors end this session, not the run
            if not type(err).__module__.startswith("playwright"):
                raise
            rec.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        finally:
            if stairs is not None:
                stairs.cancel()
        if rec.ended is None:
            rec.ended = run.t()
        return rec


async def _stairs(cdp: Any, prof: Profile, run: RunClock, deadline: float, rec: SessionRecord) -> None:
    """Step the downlink of a `stairs` profile at equal intervals over the rest of the run."""
    start = time.monotonic()
    span = max(1.0, deadline - start)
    for at in prof.step_times(span)[1:]:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        cond = prof.at(at / span + 1e-9)
        await cdp.send("Network.emulateNetworkConditions", cond.cdp())
        rec.extra["network"].append((round(run.t(), 3), cond.down_bps))


def _fill(rec: SessionRecord, raw: dict[str, Any], run: RunClock) -> None:
    """The session's record from the page's (times in host epoch ms)."""
    end = raw["endedAt"]
    rec.ended = run.from_ms(end)
    if raw.get("loadSourceAt"):
        rec.joined = run.from_ms(raw["loadSourceAt"])
    first = raw.get("firstPlayingAt")
    if first:
        rec.first_play = run.from_ms(first)
        rec.stalls = [(run.from_ms(w["at"]), run.from_ms(w["until"] or end)) for w in raw["waiting"]]
        stalled = sum(b - a for a, b in rec.stalls)
        rec.played_s = max(0.0, run.from_ms(end) - rec.first_play - stalled)
    else:
        rec.error = rec.error or "never started playing"
    rec.latency = [(round(run.from_ms(s["t"]), 3), round(s["g2g"] / 1000, 4)) for s in raw["samples"]
                   if s.get("g2g") is not None]
    levels = raw.get("levels") or []
    for sw in raw["switches"]:
        lv = levels[sw["level"]] if 0 <= sw["level"] < len(levels) else {}
        rec.switch_to(run.from_ms(sw["at"]), lv.get("name", str(sw["level"])), int(lv.get("bitrate") or 0), lv.get("height"))
    frags = raw["frags"]
    rec.bytes = sum(int(f["bytes"] or 0) for f in frags)
    rec.requests["part"] = sum(1 for f in frags if f["part"] >= 0)
    rec.requests["segment"] = sum(1 for f in frags if f["part"] < 0)
    rec.requests["playlist"] = raw["playlists"]
    errors = raw["errors"]
    rec.errors = Counter(e["details"] for e in errors if e["type"] == "networkError")
    rec.extra.update({
        "hls_js": raw.get("hlsVersion"), "levels": levels,
        "player_errors": dict(Counter(e["details"] for e in errors)), "player_error_count": raw["errorCount"],
        "fatal_errors": [e["details"] for e in errors if e["fatal"]],
        "frames": raw.get("quality"), "rates_seen": sorted({s["rate"] for s in raw["samples"]}),
        "_frags": frags, "_waiting": raw["waiting"],
    })
