"""Validation of the names in delivery URLs. Malformed -> `BadName` (HTTP 400); the names that
pass can be used as store keys, since they cannot contain separators or dots-only parts.

Media URIs are relative to their media playlist: a segment is `{seq}.m4s`, an LL-HLS part is
`{seq}.{index}.m4s`, the init segment is `init.mp4?v={tag}`. Building and parsing live here
together so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import re

# Feed and rendition names: the config accepts only these, so every name it holds is one a URL
# may carry and a store key may use.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# One spelling per number (no leading zeros, no signs, ASCII digits only) so that a URI and its
# (seq, index) map one to one and a cache never holds the same bytes under two keys.
MEDIA_RE = re.compile(r"^(0|[1-9][0-9]{0,17})(?:\.(0|[1-9][0-9]{0,2}))?\.m4s$")
MAX_PART_INDEX = 999  # three digits: far more parts than any segment is cut into
INIT_NAME = "init.mp4"
INIT_TAG_LEN = 12


class BadName(ValueError):
    """A URL part that can never name anything we serve."""


def check_name(value: str, what: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise BadName(f"malformed {what} name")
    return value


def parse_media_name(value: str) -> tuple[int, int | None]:
    """`{seq}.m4s` -> (seq, None); `{seq}.{index}.m4s` -> (seq, index). Anything else: BadName."""
    m = MEDIA_RE.fullmatch(value)
    if not m:
        raise BadName("malformed segment name: expected <seq>.m4s or <seq>.<part>.m4s")
    index = m.group(2)
    return int(m.group(1)), int(index) if index is not None else None


def segment_name(seq: int) -> str:
    return f"{seq}.m4s"


def part_name(seq: int, index: int) -> str:
    return f"{seq}.{index}.m4s"


def init_tag(init: bytes) -> str:
    """The version tag of an init segment: a changed init gets a new URL, so init bytes can be
    cached as immutable like every media segment."""
    return hashlib.sha256(init).hexdigest()[:INIT_TAG_LEN]


def init_uri(tag: str) -> str:
    return f"{INIT_NAME}?v={tag}"
