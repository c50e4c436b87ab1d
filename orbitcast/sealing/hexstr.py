"""Hex strings as Threema spells them on the wire: message ids (16), nonces (48), keys (64),
blob ids (32, lowercase), boxes (any even length).

Whole-string matches only: a `$` anchor would let a trailing newline through, and a blob id
names a file.
"""

from __future__ import annotations

import re

BLOB_ID_LENGTH = 32  # 16 random bytes

_HEX = re.compile(r"[0-9a-fA-F]*")
_LOWER_HEX = re.compile(r"[0-9a-f]*")


def is_hex(text: str, length: int | None = None) -> bool:
    """Hex digits of either case; exactly `length` of them when given."""
    return (length is None or len(text) == length) and _HEX.fullmatch(text) is not None


def is_lower_hex(text: str, length: int) -> bool:
    """Exactly `length` lowercase hex digits (one spelling per value, as ids and hashes need)."""
    return len(text) == length and _LOWER_HEX.fullmatch(text) is not None


def is_blob_id(text: str) -> bool:
    return is_lower_hex(text, BLOB_ID_LENGTH)
