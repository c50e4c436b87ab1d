"""VMAF, PSNR and SSIM of one encode against its reference, with ffmpeg's libvmaf filter.

The encode is scaled up to the reference's size with bicubic interpolation (Netflix's practice:
VMAF judges a rendition as a player shows it, full screen) and compared frame by frame. Frames
are paired by index: both inputs are renumbered 0, 1, 2... before libvmaf, so neither
timestamps nor their rounding in a container can shift a pair (encode.py makes sure frame i is
the same picture in both). `shift` drops that many reference frames first: a misaligned
comparison on purpose, which scores clearly lower on any moving picture; the tests use it to
show that the aligned one is right.

libvmaf's JSON log (`log_fmt=json`) holds a `frames` list (`frameNum`, `metrics`) and
`pooled_metrics` (min, max, mean, harmonic_mean per metric). Besides `vmaf` it has `psnr_y`
(dB; 60 for identical 8-bit pictures) and `float_ssim` from the features asked for.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import QualityError
from .ffmpeg import VmafFfmpeg

MODEL = "vmaf_v0.6.1"  # built into libvmaf; for a 1080p-class screen seen from three picture heights
FEATURES = "name=psnr|name=float_ssim"
SCORE_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Pooled:
    mean: float
    harmonic_mean: float
    min: float
    p5: float  # the 5th percentile of the frames' scores: how the worst moments look


@dataclass(frozen=True)
class Score:
    frames: int
    vmaf: Pooled
    psnr_y: float  # mean over frames, dB
    ssim: float  # mean over frames (float_ssim)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(math.floor(k))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def parse_log(data: str | bytes) -> Score:
    """The figures of a libvmaf JSON log; ValueError with the reason when it is not one."""
    try:
        log = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"libvmaf log is not JSON: {err}") from None
    if not isinstance(log, dict) or not isinstance(log.get("frames"), list) or not log["frames"]:
        raise ValueError("libvmaf log has no frames")
    try:
        per_frame = [float(f["metrics"]["vmaf"]) for f in log["frames"]]
        pooled = log["pooled_metrics"]
        vmaf = pooled["vmaf"]
        score = Score(
            frames=len(per_frame),
            vmaf=Pooled(round(float(vmaf["mean"]), 3), round(float(vmaf["harmonic_mean"]), 3),
                        round(float(vmaf["min"]), 3), round(_percentile(per_frame, 5), 3)),
            psnr_y=round(float(pooled["psnr_y"]["mean"]), 3),
            ssim=round(float(pooled["float_ssim"]["mean"]), 5),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"libvmaf log lacks {err} (were the psnr and float_ssim features asked for?)") from None
    return score


def filter_graph(width: int, height: int, log_name: str, shift: int = 0, threads: int | None = None) -> str:
    """The -lavfi graph: input 0 (the encode) scaled to the reference (input 1), both renumbered."""
    n = threads or os.cpu_count() or 1
    # settb+setpts=N: pts = frame index in one common time base, so framesync pairs by index.
    number = "settb=1/25,setpts=N"
    trim = f"trim=start_frame={shift}," if shift else ""
    return (f"[0:v]{number},scale={width}:{height}:flags=bicubic,format=yuv420p[dis];"
            f"[1:v]{trim}{number},format=yuv420p[ref];"
            f"[dis][ref]libvmaf=model=version={MODEL}:feature={FEATURES}:n_threads={n}"
            f":log_fmt=json:log_path={log_name}:shortest=1")


def score(ffmpeg: VmafFfmpeg, encode: Path, reference: Path, width: int, height: int, log: Path,
          shift: int = 0, threads: int | None = None) -> Score:
    """Measure `encode` against `reference` (width x height); the log goes to `log`."""
    # ffmpeg runs in the log's folder and names it there: a path inside a filter graph would
    # need escaping of ':' and ','.
    graph = filter_graph(width, height, log.name, shift, threads)
    cmd = [ffmpeg.path, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
           "-i", str(encode.resolve()), "-i", str(reference.resolve()), "-lavfi", graph, "-f", "null", "-"]
    try:
        done = subprocess.run(cmd, cwd=log.parent, capture_output=True, text=True, timeout=SCORE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise QualityError(f"libvmaf on {encode.name} took over {SCORE_TIMEOUT_S} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise QualityError(f"ffmpeg libvmaf failed on {encode.name}: {last}")
    try:
        return parse_log(log.read_bytes())
    except (OSError, ValueError) as err:
        raise QualityError(f"{log}: {err}") from None
