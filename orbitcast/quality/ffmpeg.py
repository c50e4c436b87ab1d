"""The ffmpeg that measures: one built with libvmaf.

Debian's ffmpeg 5.1 has no libvmaf; the static binary in the `imageio-ffmpeg` wheel has it, with
the VMAF models built in (`model=version=vmaf_v0.6.1` needs no model file). Its path is
imageio-ffmpeg's choice, which the IMAGEIO_FFMPEG_EXE variable overrides; `--ffmpeg` names
another binary.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from .errors import QualityError

CHECK_TIMEOUT_S = 30


@dataclass(frozen=True)
class VmafFfmpeg:
    path: str
    version: str  # the first line of `ffmpeg -version`, e.g. "ffmpeg version n9.0.2-..."


def _default_path() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise QualityError("imageio-ffmpeg is missing (its ffmpeg has libvmaf): pip install 'orbitcast[playtest]', "
                           "or give --ffmpeg PATH") from None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as err:  # no binary for this platform, and none on IMAGEIO_FFMPEG_EXE
        raise QualityError(f"imageio-ffmpeg has no ffmpeg here: {err}") from None


def _run(path: str, *args: str) -> str:
    try:
        done = subprocess.run([path, "-hide_banner", *args], capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    except OSError as err:
        raise QualityError(f"cannot run ffmpeg {path}: {err.strerror or err}") from None
    except subprocess.TimeoutExpired:
        raise QualityError(f"ffmpeg {path} did not answer {' '.join(args)} within {CHECK_TIMEOUT_S} s") from None
    return done.stdout


def find_vmaf_ffmpeg(path: str | None = None) -> VmafFfmpeg:
    """The ffmpeg to measure with; QualityError when it cannot run or has no libvmaf filter."""
    exe = path or _default_path()
    filters = _run(exe, "-filters")
    if not any(line.split()[1:2] == ["libvmaf"] for line in filters.splitlines()):
        raise QualityError(f"{exe} has no libvmaf filter (Debian's ffmpeg lacks it; the imageio-ffmpeg "
                           "wheel's binary has it)")
    version = next(iter(_run(exe, "-version").splitlines()), "ffmpeg (version unknown)")
    return VmafFfmpeg(exe, version.strip())
