"""The pipeline an e2e test with a Ray cluster of its own starts: one feed on a two-rung ladder
small enough for CI's two cores beside the shared pipeline's work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orbitcast.config import OrbitcastConfig, parse_config
from tests.conftest import reserved_port

TOP, BOTTOM = "180p", "90p"


def small_config(tmp: Path, feed: dict[str, Any], **extra: Any) -> OrbitcastConfig:
    """`feed` on 180p + 90p (ultrafast), one transcoder, store and keys under `tmp`, free ports."""
    return parse_config({
        "feeds": [feed],
        "ladder": {"rungs": [{"name": TOP, "width": 320, "height": 180, "video_bitrate": 250_000},
                             {"name": BOTTOM, "width": 160, "height": 90, "video_bitrate": 100_000}],
                   "audio_bitrate": 64_000, "preset": "ultrafast"},
        "transcoders": 1,
        "store": str(tmp / "store"),
        "threema": {"keys_dir": str(tmp / "keys")},
        "serve": {"host": "127.0.0.1", "port": reserved_port()},
        "clock": {"ntp_port": reserved_port()},
        **extra,
    })
