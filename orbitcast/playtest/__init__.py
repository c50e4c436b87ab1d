"""The playback test facility (`orbitcast playtest URL`): hls.js in headless Chromium under
device profiles, and simulated LL-HLS viewers in one asyncio process, all timed by the clock
authority; a report of what each viewer experienced (startup, stalls, latency, switches), with
plots and P.1203 inputs. See docs/playtest.md."""

from .browser import BrowserSetup, find_chromium, player_config_json, viewer_page_config
from .errors import PlaylistError, PlaytestError
from .profiles import PROFILES, Profile
from .report import table
from .runner import PlaytestOptions, run_playtest
from .simviewer import SimulatedViewer, ViewerOptions

__all__ = [
    "PROFILES",
    "BrowserSetup",
    "PlaylistError",
    "PlaytestError",
    "PlaytestOptions",
    "Profile",
    "SimulatedViewer",
    "ViewerOptions",
    "find_chromium",
    "player_config_json",
    "run_playtest",
    "table",
    "viewer_page_config",
]
