"""What a feed that pulls HLS knows of its origin between two sessions.

FFmpeg's HLS demuxer reads a live playlist's segments as soon as they are listed and then waits
for the next, and a session ends the same way whether the playlist carries EXT-X-ENDLIST
(RFC 8216 4.3.3.4: no more segments will be added) or the origin went away. So the feed reads
the origin's playlist itself, with one GET (two for a master playlist, whose first variant
stands for all), around each session:

- the read timeout is three target durations (at least `READ_TIMEOUT`): a live origin lists a
  new segment within 1.5 of them (RFC 8216 6.2.1), and FFmpeg reloads the playlist about once
  per target duration, so a healthy origin with 6 s segments never looks lost;
- a playlist with EXT-X-ENDLIST ends the feed: opened again, the finished playlist would play
  from its start once more;
- a lost session opens again at the first segment it did not play, not three from the end
  (FFmpeg's default), which would play up to three segments twice, and not at all while the
  origin lists nothing new.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from .source import READ_TIMEOUT

STALE_AFTER_TARGETS = 3.0
MAX_PLAYLIST_BYTES = 4 << 20  # a playlist is text; anything larger is not one


def is_hls_pull(source: str) -> bool:
    split = urlsplit(source)
    return split.scheme in ("http", "https") and split.path.lower().endswith(".m3u8")


@dataclass(frozen=True)
class MediaPlaylist:
    target_duration: float
    first_seq: int  # EXT-X-MEDIA-SEQUENCE
    count: int  # segments listed
    ended: bool  # EXT-X-ENDLIST

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1

    @property
    def read_timeout(self) -> float:
        return max(READ_TIMEOUT, STALE_AFTER_TARGETS * self.target_duration)


def _tag_value(line: str) -> str:
    return line.split(":", 1)[1].strip() if ":" in line else ""


def parse_media_playlist(text: str) -> MediaPlaylist:
    target, first, count, ended = 0.0, 0, 0, False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION"):
            target = float(_tag_value(line) or 0)
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE"):
            first = int(_tag_value(line) or 0)
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line and not line.startswith("#"):
            count += 1
    return MediaPlaylist(target, first, count, ended)


def first_variant(playlist: str, base: str) -> str | None:
    """The URI after the first EXT-X-STREAM-INF of a master playlist, absolute; None otherwise."""
    lines = [line.strip() for line in playlist.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF"):
            uri = next((u for u in lines[i + 1:] if u and not u.startswith("#")), None)
            return urljoin(base, uri) if uri else None
    return None


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


def fetch_media_playlist(url: str, timeout: float = 2.0) -> MediaPlaylist | None:
    """The origin's media playlist (a master playlist's first variant), None where it cannot be
    read now: the feed then opens the source as it is and reports what FFmpeg finds."""
    url, headers = _without_credentials(url)
    try:
        text = _get(url, headers, timeout)
        variant = first_variant(text, url)
        if variant is not None:
            # the credentials go to the host they were given for only
            same = urlsplit(variant).netloc == urlsplit(url).netloc
            text = _get(variant, headers if same else {}, timeout)
        if not text.lstrip().startswith("#EXTM3U"):
            return None
        return parse_media_playlist(text)
    except (OSError, urllib.error.URLError, ValueError):
        return None


@dataclass(frozen=True)
class NextSession:
    new: bool  # False: the origin lists nothing the last session did not play
    options: dict[str, str]  # for FFmpeg's HLS demuxer, this session only
    read_timeout: float


class OriginWatch:
    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self._played: MediaPlaylist | None = None  # the playlist as the last session ended

    def session_ended(self) -> bool:
        """A session ended: True where the origin ended the stream (EXT-X-ENDLIST)."""
        playlist = fetch_media_playlist(self.url, self.timeout)
        if playlist is not None:
            self._played = playlist
        return playlist is not None and playlist.ended

    def next_session(self) -> NextSession:
        now = fetch_media_playlist(self.url, self.timeout)
        if now is None:
            return NextSession(True, {}, READ_TIMEOUT)
        played = self._played
        if played is None or now.last_seq < played.last_seq:
            # the first session, or the origin started again with new numbers: FFmpeg's start
            return NextSession(True, {}, now.read_timeout)
        unplayed = now.last_seq - played.last_seq
        if unplayed <= 0:
            return NextSession(False, {}, now.read_timeout)
        # live_start_index counts from the end when negative; 0 is the oldest segment listed,
        # where segments went unplayed beyond the window
        start = str(-unplayed) if unplayed < now.count else "0"
        return NextSession(True, {"live_start_index": start}, now.read_timeout)
