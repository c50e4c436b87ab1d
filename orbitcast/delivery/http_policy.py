"""Response headers a CDN and a web player can use."""

from __future__ import annotations

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, Content-Type",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Age, Date",
}
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/iso.segment"
INIT_TYPE = "video/mp4"


def immutable() -> dict[str, str]:
    """Segments, parts and versioned init segments (`init.mp4?v=`) never change once
    published: cache them for a year."""
    return {**CORS, "Cache-Control": "public, max-age=31536000, immutable"}


def live_playlist(segment_duration: float) -> dict[str, str]:
    """A live playlist changes with every part. A CDN may keep it half a segment (at least the
    one second HTTP can say): an LL-HLS player then blocks for the part it needs next, and a
    classic one was that far behind anyway."""
    return {**CORS, "Cache-Control": f"public, max-age={max(1, int(segment_duration / 2))}"}


def blocking_playlist(target_duration: int) -> dict[str, str]:
    """An answer to `_HLS_msn`/`_HLS_part` holds the part asked for and stays a right answer to
    that query: a CDN caches it by its query and collapses the viewers asking the same."""
    return {**CORS, "Cache-Control": f"public, max-age={6 * target_duration}"}


def final_playlist() -> dict[str, str]:
    """A time-shift VOD playlist of a range behind the live edge never changes (until
    retention deletes its media): a CDN may keep it a day."""
    return {**CORS, "Cache-Control": "public, max-age=86400"}


def no_store() -> dict[str, str]:
    return {**CORS, "Cache-Control": "no-store"}


def not_yet() -> dict[str, str]:
    """A 404 for a segment that may exist soon must not be cached for long."""
    return {**CORS, "Cache-Control": "public, max-age=1"}
