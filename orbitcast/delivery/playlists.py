"""HLS playlist text (RFC 8216): the multivariant playlist and live media playlists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from ..segment import Segment

HLS_VERSION = 7  # fMP4 with EXT-X-MAP in a playlist without I-frames-only needs 6; 7 for CMAF


@dataclass(frozen=True)
class RenditionInfo:
    name: str
    width: int
    height: int
    bandwidth: int  # peak bits per second, video + audio
    average_bandwidth: int
    codecs: str
    frame_rate: float


def iso_ms(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def master_playlist(renditions: Sequence[RenditionInfo]) -> str:
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    # Highest first: players that pick the first variant start with the best picture.
    for r in sorted(renditions, key=lambda r: r.bandwidth, reverse=True):
        attrs = [
            f"BANDWIDTH={r.bandwidth}",
            f"AVERAGE-BANDWIDTH={r.average_bandwidth}",
            f"RESOLUTION={r.width}x{r.height}",
            f'CODECS="{r.codecs}"',
        ]
        if r.frame_rate:
            attrs.append(f"FRAME-RATE={r.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(f"{r.name}/index.m3u8")
    return "\n".join(lines) + "\n"


def media_playlist(
    segments: Sequence[Segment],
    target_duration: float,
    ended: bool = False,
    discontinuity_sequence: int = 0,
    discontinuities: set[int] | None = None,
) -> str:
    """A live media playlist over `segments` (ascending seq, as the window keeps them).

    A gap in seq (a segment that never arrived) is marked with EXT-X-DISCONTINUITY, so players
    re-sync their timeline instead of stalling on it. `discontinuities` names the seqs that
    follow a gap (default: found from the listed seqs); `discontinuity_sequence` counts the
    gaps before the first listed segment.
    """
    longest = max((s.duration for s in segments), default=target_duration)
    target = max(1, math.ceil(max(target_duration, longest) - 1e-3))
    first = segments[0].seq if segments else 0
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{first}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    lines.append('#EXT-X-MAP:URI="init.mp4"')
    previous: int | None = None
    for s in segments:
        gap = s.seq in discontinuities if discontinuities is not None else previous is not None and s.seq != previous + 1
        if gap:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso_ms(s.program_date_time)}")
        lines.append(f"#EXTINF:{s.duration:.5f},")
        lines.append(f"{s.seq}.m4s")
        previous = s.seq
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
