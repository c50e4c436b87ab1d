"""ISO 8601 UTC with milliseconds, the body of `GET /time` (DASH UTCTiming `http-iso`)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def format_iso_ms(t: float) -> str:
    """Unix seconds -> `YYYY-MM-DDTHH:MM:SS.mmmZ`.

    Milliseconds are truncated (floor), never rounded up: rounding could print a time that
    has not happened yet, and a player comparing it with a segment's date-time would see
    the segment arrive from the future.
    """
    if not math.isfinite(t):
        raise ValueError(f"not a finite time: {t!r}")
    ms = math.floor(t * 1000.0)
    # timedelta arithmetic on integers avoids float formatting surprises (e.g. .999999).
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(s: str) -> float:
    """ISO 8601 with an explicit UTC designator or offset -> Unix seconds."""
    text = s.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"ISO time without a zone: {s!r}")
    return (dt - _EPOCH).total_seconds()
