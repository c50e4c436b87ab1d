"""Whether `orbitcast demo` analyses its feeds, and the line that says so.

The demo's own defaults (no --config) turn the stage on when it can run here (the `analysis`
extra is installed) and leave it off otherwise; a config file is taken as it is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import available

if TYPE_CHECKING:
    from ..config import OrbitcastConfig


def for_demo(config: "OrbitcastConfig", from_file: bool) -> tuple["OrbitcastConfig", str]:
    """(the config to run, one line for the terminal saying whether analysis is on and why)."""
    why = available()
    analysis = config.analysis
    if not from_file and not analysis.enabled and why is None:
        analysis = analysis.model_copy(update={"enabled": True})
        config = config.model_copy(update={"analysis": analysis})
    if not analysis.enabled:
        reason = "analysis.enabled is false in the config" if from_file else why
        return config, f"orbitcast: analysis off ({reason})"
    if why is not None:
        return config, f"orbitcast: analysis off ({why})"
    feeds = [f.name for f in config.feeds if analysis.covers(f.name)]
    return config, (f"orbitcast: analysis on for {', '.join(feeds) or 'no feed'} ({analysis.sample_fps:g} pictures/s): "
                    f"EXT-X-DATERANGE tags in the media playlists, /api/analysis/<feed>, the viewer's overlay")
