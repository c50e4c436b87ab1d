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
    """Segments and init segments never change once published: cache them for a year."""
    return {**CORS, "Cache-Control": "public, max-age=31536000, immutable"}


def live_playlist(segment_duration: float) -> dict[str, str]:
    """A live playlist changes every segment; half of that keeps CDNs near the live edge."""
    return {**CORS, "Cache-Control": f"public, max-age={max(1, int(segment_duration / 2))}"}


def no_store() -> dict[str, str]:
    return {**CORS, "Cache-Control": "no-store"}


def not_yet() -> dict[str, str]:
    """A 404 for a segment that may exist soon must not be cached for long."""
    return {**CORS, "Cache-Control": "public, max-age=1"}
