"""Ledger keys pinned on first use, one per server: the known-ledgers file of `orbitcast verify`.

As ssh does with known_hosts: the first verification against a server pins the key that
server publishes at `/ledger/pubkey`; every later one checks that the server still publishes
that key, and refuses (`LedgerKeyChanged`) when it does not, since a changed key means either
a new log key on the server or someone in between answering with their own. Accepting a new
key is a deliberate act: delete the server's line (the next run pins again), or give the key.

The file (default `$XDG_CONFIG_HOME/orbitcast/known_ledgers`, else
`~/.config/orbitcast/known_ledgers`) holds one server a line; blank lines and lines starting
with `#` are ignored:

    http://edge.example:8000 ed25519:<64 hex digits>

A server is its origin, `scheme://host:port`, lowercased, with the port always written, so
`http://Edge.example` and `http://edge.example:80` are one server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from nacl.signing import VerifyKey

KEY_PREFIX = "ed25519:"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER = "# orbitcast verify: ledger keys pinned on first use (ORIGIN ed25519:HEX, one a line)\n"


class KnownKeysError(ValueError):
    """The known-ledgers file cannot be read or written, or a line is not `ORIGIN ed25519:HEX`;
    the message names the file and the line."""


class LedgerKeyChanged(Exception):
    """The server publishes another key than the one pinned for it."""

    def __init__(self, origin: str, pinned: bytes, served: bytes, path: Path, line: int) -> None:
        self.origin = origin
        self.pinned = pinned
        self.served = served
        self.path = path
        self.line = line
        super().__init__(
            f"WARNING: THE LEDGER KEY OF {origin} HAS CHANGED!\n"
            f"The server now publishes {KEY_PREFIX}{served.hex()}\n"
            f"but {path}:{line} pins {KEY_PREFIX}{pinned.hex()}\n"
            "Either the server's log key was replaced, or someone between you and the server "
            "is answering with their own key.\n"
            f"If you know the new key is right, delete line {line} of {path} "
            "(the next run pins the new key)."
        )


class Trust(Enum):
    FIRST_USE = "first use"  # no key was pinned for the server: the served one is now
    KNOWN = "known"  # the served key is the pinned one


@dataclass(frozen=True)
class PinnedKey:
    origin: str
    key: bytes
    line: int


def default_path(environ: Mapping[str, str] = os.environ) -> Path:
    """`$XDG_CONFIG_HOME/orbitcast/known_ledgers`, or `~/.config/orbitcast/known_ledgers`."""
    config = environ.get("XDG_CONFIG_HOME") or ""
    # The XDG base directory spec says to ignore a relative value.
    base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
    return base / "orbitcast" / "known_ledgers"


def origin_of(url: str) -> str:
    """`scheme://host:port` of a URL, lowercased, with the default port written out."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"{url!r} has a bad port") from None
    host = parts.hostname  # lowercased by urlsplit
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    return f"{scheme}://{host}:{port}"


def read_known(path: Path) -> dict[str, PinnedKey]:
    """The pinned keys by origin; an absent file pins nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise KnownKeysError(f"cannot read {path}: {e}") from None
    known: dict[str, PinnedKey] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pin = _parse_line(line, path, number)
        earlier = known.get(pin.origin)
        if earlier is not None and earlier.key != pin.key:
            raise KnownKeysError(
                f"{path}:{number}: {pin.origin} is pinned to another key on line {earlier.line}; "
                "keep the one line you trust"
            )
        known.setdefault(pin.origin, pin)
    return known


def _parse_line(line: str, path: Path, number: int) -> PinnedKey:
    fields = line.split()
    where = f"{path}:{number}"
    if len(fields) != 2:
        raise KnownKeysError(f"{where}: expected 'ORIGIN {KEY_PREFIX}HEX', got {line[:80]!r}")
    origin, key_text = fields
    try:
        normal = origin_of(origin)
    except ValueError as e:
        raise KnownKeysError(f"{where}: {e}") from None
    if normal != origin:
        raise KnownKeysError(f"{where}: write the server as {normal}, not {origin}")
    key = b""
    if key_text.startswith(KEY_PREFIX):
        try:
            key = bytes.fromhex(key_text[len(KEY_PREFIX):])
        except ValueError:
            pass
    if len(key) != 32:
        raise KnownKeysError(f"{where}: the key must be {KEY_PREFIX} and 64 hex digits, got {key_text[:80]!r}")
    return PinnedKey(origin, key, number)


def pin(path: Path, origin: str, key: bytes) -> None:
    """Append `origin key` to the file, creating it (and its folder) if need be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not path.exists() or path.stat().st_size == 0
        with path.open("a+", encoding="utf-8") as f:
            prefix = _HEADER if new else ""
            if not new:
                f.seek(0)
                if not f.read().endswith("\n"):
                    prefix = "\n"  # a hand-edited file without a final newline
            f.write(f"{prefix}{origin} {KEY_PREFIX}{key.hex()}\n")
    except OSError as e:
        raise KnownKeysError(f"cannot write {path}: {e}") from None


def trust_on_first_use(path: Path, url: str, served: VerifyKey) -> Trust:
    """Pin `served` for the server of `url` if none is pinned; pass if it is the pinned key;
    raise `LedgerKeyChanged` if another is pinned (the file is then left as it is)."""
    origin = origin_of(url)
    known = read_known(path).get(origin)
    if known is None:
        pin(path, origin, bytes(served))
        return Trust.FIRST_USE
    if known.key != bytes(served):
        raise LedgerKeyChanged(origin, known.key, bytes(served), path, known.line)
    return Trust.KNOWN
