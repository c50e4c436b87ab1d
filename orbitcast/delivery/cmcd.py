"""Common Media Client Data (CTA-5004): what a player says about itself with each request.

A payload is `key[=value]` pairs separated by commas, e.g.
`bl=21300,br=3200,cid="iss",ot=v,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",su`: strings in
double quotes (backslash escapes `"` and `\\`), tokens bare (`ot=v`), integers and decimals
bare, a boolean true as its key alone. It rides in a query parameter (`CMCD=`, URL-encoded,
the whole payload) or in four headers (`CMCD-Request`, `CMCD-Object`, `CMCD-Status`,
`CMCD-Session`), each with part of the keys.

Players send it on every request, so nothing here may fail a request: a payload that does not
parse is ignored as a whole, a known key with a value of the wrong type or size is dropped, and
each is counted (`Reading.invalid`). Unknown keys (custom `com.example-x` ones, later versions)
are kept as they came.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl

QUERY_KEY = "CMCD"
HEADERS = (b"cmcd-request", b"cmcd-object", b"cmcd-status", b"cmcd-session")
MAX_PAYLOAD = 4096  # far above any real payload (all keys fit in a few hundred bytes)
MAX_ID = 64  # sid and cid: 5.2, "maximum length 64 characters"

Value = int | float | str | bool


class Token(str):
    """A bare token (`ot=v`), told apart from a quoted string (`sid="v"`)."""


class CmcdError(ValueError):
    """A payload that is not CMCD."""


_INTEGER = re.compile(r"-?[0-9]{1,15}")
_DECIMAL = re.compile(r"-?[0-9]{1,12}\.[0-9]{1,3}")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]*")

_INTEGER_KEYS = frozenset({"bl", "br", "d", "dl", "mtp", "rtp", "tb", "v"})
_STRING_KEYS = {"cid": MAX_ID, "sid": MAX_ID, "nor": 1024, "nrr": 64}
_TOKEN_KEYS = {
    "ot": frozenset({"m", "a", "v", "av", "i", "c", "tt", "k", "o"}),
    "sf": frozenset({"d", "h", "s", "o"}),
    "st": frozenset({"v", "l"}),
}
_BOOLEAN_KEYS = frozenset({"bs", "su"})
_DECIMAL_KEYS = frozenset({"pr"})


# One pair: a key, then `="string"`, `=bare` or nothing (a boolean true), then a comma with
# something after it, or the end. Strings hold printable ASCII, `"` and `\\` escaped.
_PAIR = re.compile(r' *([A-Za-z0-9][A-Za-z0-9._-]{0,63}) *(?:=(?:"((?:[ !#-\[\]-~]|\\["\\])*)"|([^,"]*)))? *(?:,(?=.)|\Z)',
                   re.DOTALL)
_ESCAPE = re.compile(r'\\(["\\])')


def _bare(raw: str) -> Value:
    if raw.isascii() and raw.isdigit() and len(raw) <= 15:
        return int(raw)
    if raw in ("?1", "true"):
        return True
    if raw in ("?0", "false"):
        return False
    if _INTEGER.fullmatch(raw):
        return int(raw)
    if _DECIMAL.fullmatch(raw):
        return float(raw)
    if _TOKEN.fullmatch(raw):
        return Token(raw)
    raise CmcdError(f"bad value {raw[:20]!r}")


def parse(payload: str) -> dict[str, Value]:
    """The pairs of one payload; `CmcdError` if it is not CMCD. A key given twice keeps its
    last value."""
    if len(payload) > MAX_PAYLOAD:
        raise CmcdError("payload too long")
    out: dict[str, Value] = {}
    if not payload.strip(" "):
        return out
    pos, n = 0, len(payload)
    while pos < n:
        m = _PAIR.match(payload, pos)
        if m is None:
            raise CmcdError(f"not a key[=value] pair at {payload[pos:pos + 20]!r}")
        key, quoted, bare = m.groups()
        if quoted is not None:
            value: Value = _ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
        elif bare is None:
            value = True
        else:
            value = _bare(bare.strip(" "))
        out[key] = value
        pos = m.end()
    return out


def _valid(key: str, value: Value) -> bool:
    """Whether a known key's value has its type (5.1); unknown keys pass."""
    if key in _INTEGER_KEYS:
        return type(value) is int and value >= 0
    if key in _STRING_KEYS:
        return type(value) is str and len(value) <= _STRING_KEYS[key] and (key != "sid" or bool(value))
    if key in _TOKEN_KEYS:
        return isinstance(value, str) and value in _TOKEN_KEYS[key]
    if key in _BOOLEAN_KEYS:
        return type(value) is bool
    if key in _DECIMAL_KEYS:
        return type(value) in (int, float) and value >= 0
    return True


def _check(payload: str) -> tuple[tuple[tuple[str, Value], ...], int]:
    """The valid pairs of a payload and how many things in it were ignored."""
    try:
        pairs = parse(payload)
    except CmcdError:
        return (), 1
    kept = tuple((k, v) for k, v in pairs.items() if _valid(k, v))
    return kept, len(pairs) - len(kept)


# A player repeats its CMCD-Session and CMCD-Object values request after request: parsed once.
# Only short payloads are kept, so the cache holds about a megabyte whatever clients send.
CACHED_PAYLOAD = 256
_check_cached = lru_cache(maxsize=4096)(_check)


def _checked(payload: str) -> tuple[tuple[tuple[str, Value], ...], int]:
    return _check_cached(payload) if len(payload) <= CACHED_PAYLOAD else _check(payload)


@dataclass
class Reading:
    """What one request said: its keys, how many payloads or keys were ignored, and where it
    came from ("header", "query" or "both")."""

    values: dict[str, Value] = field(default_factory=dict)
    invalid: int = 0
    via: str = ""

    @property
    def sid(self) -> str | None:
        sid = self.values.get("sid")
        return sid if type(sid) is str else None

    @property
    def buffer_s(self) -> float | None:
        """`bl` (buffer length, ms) in seconds."""
        bl = self.values.get("bl")
        return bl / 1000 if type(bl) is int else None

    def add(self, payload: str) -> None:
        pairs, invalid = _checked(payload)
        self.values.update(pairs)
        self.invalid += invalid


def read(headers: Iterable[tuple[bytes, bytes]], query: bytes) -> Reading | None:
    """CMCD of a request from its ASGI headers and raw query string; None when it has none."""
    reading: Reading | None = None
    for name, value in headers:
        if name.startswith(b"cmcd-") and name in HEADERS:
            if reading is None:
                reading = Reading(via="header")
            reading.add(value.decode("latin-1"))
    if query and b"CMCD=" in query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if key == QUERY_KEY:
                if reading is None:
                    reading = Reading(via="query")
                elif reading.via == "header":
                    reading.via = "both"
                reading.add(value)
    return reading
