"""The compressed samples of an MP4 (fragmented or not), per track kind, in decode order.

What a clip shares with the segments it was cut from is its samples: the container around them
(boxes, offsets, timescales) is written anew, the sample bytes are copied. Times are exact
fractions of a second, so two files with different timescales compare without rounding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av

KINDS = ("video", "audio")


class SamplesError(ValueError):
    """The bytes are not a media file PyAV can demux."""


@dataclass(frozen=True)
class Sample:
    data: bytes
    pts: Fraction  # seconds
    dts: Fraction  # seconds
    duration: Fraction  # seconds (0 when the container does not say)
    key: bool


def read_samples(data: bytes) -> dict[str, list[Sample]]:
    """{"video": [...], "audio": [...]}: the first stream of each kind, in decode order."""
    try:
        with av.open(io.BytesIO(data), "r") as c:
            streams = {kind: next(iter(getattr(c.streams, kind)), None) for kind in KINDS}
            chosen = [s for s in streams.values() if s is not None]
            out: dict[str, list[Sample]] = {kind: [] for kind in KINDS}
            if not chosen:
                return out
            for pkt in c.demux(chosen):
                if pkt.size == 0 or pkt.pts is None:
                    continue  # the demuxer's flush packet
                tb = pkt.time_base
                dts = pkt.dts if pkt.dts is not None else pkt.pts
                out[pkt.stream.type].append(Sample(bytes(pkt), pkt.pts * tb, dts * tb,
                                                   (pkt.duration or 0) * tb, bool(pkt.is_keyframe)))
            return out
    except av.FFmpegError as e:
        raise SamplesError(f"not a media file: {e}") from None


def read_comment(data: bytes) -> str | None:
    """The container's `comment` metadata (an MP4 ©cmt), or None (none, or not a media file)."""
    try:
        with av.open(io.BytesIO(data), "r") as c:
            return c.metadata.get("comment")
    except av.FFmpegError:
        return None
