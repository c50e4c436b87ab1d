"""Reading our LL-HLS playlists with the `m3u8` parser, as tests need them."""

from __future__ import annotations

import m3u8


def whole_segments(pl: m3u8.M3U8) -> list[m3u8.Segment]:
    """The whole segments a classic player fetches: not the parts of the segment in progress
    (the parser gives those a segment without URI) and not gaps (EXT-X-GAP, no media)."""
    return [s for s in pl.segments if s.uri is not None and not s.gap_tag]


def seq_of(segment: m3u8.Segment) -> int:
    return int(segment.uri.split(".")[0])
