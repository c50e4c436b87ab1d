"""Whether an HLS origin we pull from has ended its stream.

FFmpeg's HLS demuxer ends a session the same way whether the playlist carries EXT-X-ENDLIST
(RFC 8216 4.3.3.4: no more segments will be added) or the origin went away. A relay opens a
lost input again, and would then play a finished playlist from its first segment once more, so
the feed asks the origin itself: one GET of the playlist (and of its first variant where it is a
master playlist)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

MAX_PLAYLIST_BYTES = 4 << 20  # a playlist is text; anything larger is not one


def is_hls_pull(source: str) -> bool:
    split = urlsplit(source)
    return split.scheme in ("http", "https") and split.path.lower().endswith(".m3u8")


def _without_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without user:password@ (urllib does not take them there), and the Basic
    authorization header that carries them, as FFmpeg sends it."""
    split = urlsplit(url)
    if split.username is None:
        return url, {}
    netloc = split.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if split.port is not None:
        netloc += f":{split.port}"
    pair = f"{unquote(split.username)}:{unquote(split.password or '')}".encode()
    return urlunsplit(split._replace(netloc=netloc)), {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def _get(url: str, headers: dict[str, str], timeout: float) -> str:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the feed's own URL
        return response.read(MAX_PLAYLIST_BYTES).decode("utf-8", errors="replace")


def first_variant(playlist: str, base: str) -> str | None:
    """The URI after the first EXT-X-STREAM-INF of a master playlist, absolute; None otherwise."""
    lines = [line.strip() for line in playlist.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF"):
            uri = next((u for u in lines[i + 1:] if u and not u.startswith("#")), None)
            return urljoin(base, uri) if uri else None
    return None


def has_endlist(playlist: str) -> bool:
    return any(line.strip() == "#EXT-X-ENDLIST" for line in playlist.splitlines())


def origin_ended(url: str, timeout: float = 2.0) -> bool:
    """True where the origin's media playlist says the stream is over; False where it does not,
    or where it cannot be read now (then the feed tries the origin again, as for any loss)."""
    url, headers = _without_credentials(url)
    try:
        playlist = _get(url, headers, timeout)
        variant = first_variant(playlist, url)
        if variant is not None:
            # the credentials go to the host they were given for only
            same = urlsplit(variant).netloc == urlsplit(url).netloc
            playlist = _get(variant, headers if same else {}, timeout)
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return has_endlist(playlist)
