"""Validation of the names in delivery URLs. Malformed -> `BadName` (HTTP 400); the names that
pass can be used as store keys, since they cannot contain separators or dots-only parts."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SEGMENT_RE = re.compile(r"^(0|[1-9][0-9]{0,17})\.m4s$")


class BadName(ValueError):
    """A URL part that can never name anything we serve."""


def check_name(value: str, what: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise BadName(f"malformed {what} name")
    return value


def parse_segment_name(value: str) -> int:
    m = SEGMENT_RE.fullmatch(value)
    if not m:
        raise BadName("malformed segment name: expected <seq>.m4s")
    return int(m.group(1))
