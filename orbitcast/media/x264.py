"""The ladder's x264 settings, and a faster preset that keeps a rung's stream headers.

A rung switched to a faster preset mid-stream (the energy plan's first step, docs/energy.md)
must keep its init segment byte for byte: players hold one EXT-X-MAP per rendition, and the
archive one init per row. An x264 preset sets some options that are written in the SPS and PPS
(entropy coder, 8x8 transform, reference frames, weighted prediction); `faster_options` keeps
those at the base preset's values and takes the rest (motion search, sub-pixel refinement,
partitions, trellis, deblocking, AQ) from the faster preset. `headers_match` checks the result
by opening both encoders: a faster preset that would change the headers is not used.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import av

from ..config import Rung

TIME_BASE = Fraction(1, 90000)
# Header-writing options of x264's presets (x264 common/base.c, x264_param_apply_preset):
# (CABAC, 8x8 transform, reference frames, weighted P prediction)
_HEADERS = {
    "ultrafast": (0, 0, 1, 0), "superfast": (1, 1, 1, 1), "veryfast": (1, 1, 1, 1), "faster": (1, 1, 2, 1),
    "fast": (1, 1, 2, 1), "medium": (1, 1, 3, 2), "slow": (1, 1, 5, 2), "slower": (1, 1, 8, 2),
    "veryslow": (1, 1, 16, 2), "placebo": (1, 1, 16, 2),
}


def rung_params(rung: Rung) -> str:
    kbps = rung.video_bitrate // 1000
    # Keyframes only where we force them, so segments and parts align across rungs.
    return f"scenecut=0:keyint=infinite:vbv-maxrate={int(kbps * 1.2)}:vbv-bufsize={kbps * 2}"


def options(rung: Rung, preset: str, extra: str = "") -> dict[str, str]:
    """The encoder options of a rung: `preset`, with `extra` x264 parameters after the rung's."""
    return {
        "preset": preset,
        # zerolatency: no B-frames or lookahead, so a frame leaves the encoder at once.
        "tune": "zerolatency",
        "forced-idr": "1",
        "x264-params": rung_params(rung) + (f":{extra}" if extra else ""),
        "profile": "high",
    }


def faster_options(rung: Rung, base: str, faster: str) -> dict[str, str]:
    """`faster`'s speed with `base`'s stream headers (unknown presets: `faster` as it is)."""
    if faster == base or base not in _HEADERS:
        return options(rung, faster)
    cabac, dct, ref, weightp = _HEADERS[base]
    return options(rung, faster, f"cabac={cabac}:8x8dct={dct}:ref={ref}:weightp={weightp}")


def _extradata(rung: Rung, fps: float, opts: dict[str, str]) -> bytes:
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = rung.width, rung.height, "yuv420p"
    cc.time_base, cc.framerate = TIME_BASE, Fraction(fps).limit_denominator(1001)
    cc.bit_rate = rung.video_bitrate
    cc.flags |= av.codec.context.Flags.global_header  # SPS and PPS in extradata, as the muxer asks
    cc.options = opts
    cc.open()
    return bytes(cc.extradata or b"")


@cache
def headers_match(rung: Rung, fps: float, base: str, faster: str) -> bool:
    """Whether the faster settings write the same SPS and PPS as the base preset's."""
    try:
        return _extradata(rung, fps, options(rung, base)) == _extradata(rung, fps, faster_options(rung, base, faster))
    except (av.error.FFmpegError, ValueError):
        return False
