"""`orbitcast quality FEED`: a window of the feed's source through its ladder, then VMAF, PSNR
and SSIM of every rung against the source pictures. The results are a JSON-ready dict
(report.py reads and prints them; the playtest report takes them with --quality)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import av

from ..config import OrbitcastConfig
from ..media.relay import redact
from .encode import EncodedWindow, encode_window
from .errors import QualityError
from .ffmpeg import find_vmaf_ffmpeg
from .vmaf import FEATURES, MODEL, score

REPORT_KIND = "orbitcast quality"
REPORT_VERSION = 1
MAX_SECONDS = 600.0


def _video_kbps(path: Path, seconds: float) -> float:
    """The rung's video bitrate as encoded: its H.264 packets over the window (no audio, no boxes)."""
    with av.open(str(path)) as c:
        total = sum(p.size for p in c.demux(video=0))
    return round(total * 8 / seconds / 1000, 1) if seconds > 0 else 0.0


def measure(
    config: OrbitcastConfig,
    feed: str,
    seconds: float = 10.0,
    *,
    source: str | None = None,
    ffmpeg: str | None = None,
    keep: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure every rung of `config`'s ladder on `seconds` of `feed`'s source (or `source`).
    `keep`: a folder for the reference, the rung files and libvmaf's logs (else a temporary one)."""
    say = progress or (lambda line: None)
    if not 0 < seconds <= MAX_SECONDS:
        raise QualityError(f"--seconds must be in (0, {MAX_SECONDS:g}]")
    feeds = {f.name: f for f in config.feeds}
    if feed not in feeds:
        raise QualityError(f"no feed {feed!r} in the config (feeds: {', '.join(feeds) or 'none'})")
    vmaf_ffmpeg = find_vmaf_ffmpeg(ffmpeg)  # before the encode: a missing libvmaf fails at once
    url = source or feeds[feed].source
    options = {} if source else dict(feeds[feed].options)
    started = time.monotonic()
    folder = keep if keep is not None else Path(tempfile.mkdtemp(prefix="orbitcast-quality-"))
    try:
        say(f"encoding {seconds:g} s of {redact(url)} through {len(config.ladder.rungs)} rungs")
        window = encode_window(url, options, config.ladder, config.segment_duration, config.part_duration,
                               seconds, folder, say)
        rungs = _score_rungs(vmaf_ffmpeg, window, config, say)
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return {
        "kind": REPORT_KIND, "version": REPORT_VERSION, "feed": feed, "source": redact(url),
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": window.seconds, "frames": window.frames, "fps": round(window.fps, 3),
        "reference": {"width": window.width, "height": window.height},
        "preset": config.ladder.preset, "segment_duration": config.segment_duration,
        "method": {"model": MODEL, "features": FEATURES, "scale": "bicubic, each rung to the source size",
                   "ffmpeg": vmaf_ffmpeg.version},
        "timing": {"encode_s": window.encode_s, "total_s": round(time.monotonic() - started, 2)},
        "rungs": rungs,
        "files": str(folder) if keep is not None else None,
    }


def _score_rungs(ffmpeg: Any, window: EncodedWindow, config: OrbitcastConfig, say: Callable[[str], None]) -> list[dict[str, Any]]:
    out = []
    for rung in config.ladder.rungs:
        t0 = time.monotonic()
        s = score(ffmpeg, window.rungs[rung.name], window.reference, window.width, window.height,
                  window.folder / f"vmaf-{rung.name}.json")
        if s.frames != window.frames:
            raise QualityError(f"rung {rung.name}: libvmaf compared {s.frames} frames, the reference has "
                               f"{window.frames}: the pairs would not be the same pictures")
        took = round(time.monotonic() - t0, 2)
        say(f"{rung.name}: VMAF {s.vmaf.mean:.2f} (p5 {s.vmaf.p5:.2f}), PSNR-Y {s.psnr_y:.2f} dB, "
            f"SSIM {s.ssim:.4f} in {took:.1f} s")
        out.append({"name": rung.name, "width": rung.width, "height": rung.height,
                    "target_kbps": rung.video_bitrate // 1000,
                    "video_kbps": _video_kbps(window.rungs[rung.name], window.frames / window.fps),
                    **s.as_dict(), "score_s": took})
    return out
