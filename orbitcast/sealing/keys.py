"""Threema key strings, key files and identities.

Threema writes keys as `private:<64 hex>` / `public:<64 hex>` (lowercase on encode, any case
accepted on decode) and key files hold the key string on their first line; the official SDK
reads only that line, stripped, so we do the same to stay interchangeable with its files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from nacl.public import PrivateKey, PublicKey

from .errors import InvalidIdentity, InvalidKey
from .hexstr import is_hex

PRIVATE_PREFIX = "private:"
PUBLIC_PREFIX = "public:"
KEY_BYTES = 32
IDENTITY_LENGTH = 8

# Threema IDs are 8 characters of A-Z/0-9; Gateway IDs start with `*`. Lowercase is refused
# rather than folded, because the callback MAC covers the ID exactly as sent.
_IDENTITY_RE = re.compile(r"[A-Z0-9*][A-Z0-9]{7}")  # fullmatch: "$" would pass a trailing newline


def validate_identity(identity: str) -> str:
    """Return `identity` if it is a well-formed 8-character Threema ID, else raise."""
    if not isinstance(identity, str) or not _IDENTITY_RE.fullmatch(identity):
        raise InvalidIdentity(f"identity must be 8 characters [A-Z0-9], optional leading '*': {identity!r:.20}")
    return identity


def is_identity(identity: object) -> bool:
    return isinstance(identity, str) and bool(_IDENTITY_RE.fullmatch(identity))


def _decode_hex_key(text: str, prefix: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidKey("key must be a string")
    text = text.strip()
    if not text.startswith(prefix):
        # Never echo the value: it may be a private key pasted into the wrong field.
        raise InvalidKey(f"key must start with {prefix!r}")
    hex_part = text[len(prefix):]
    if not is_hex(hex_part, 2 * KEY_BYTES):
        raise InvalidKey(f"key must be {prefix!r} followed by 64 hex digits")
    return bytes.fromhex(hex_part)


def decode_private_key(text: str) -> PrivateKey:
    """`private:<hex>` -> PyNaCl PrivateKey (raw Curve25519 secret, as the SDK does)."""
    return PrivateKey(_decode_hex_key(text, PRIVATE_PREFIX))


def decode_public_key(text: str) -> PublicKey:
    """`public:<hex>` -> PyNaCl PublicKey."""
    return PublicKey(_decode_hex_key(text, PUBLIC_PREFIX))


def public_key_from_hex(hex_text: str) -> PublicKey:
    """Bare 64-hex public key, as GET /pubkeys/{id} answers it."""
    hex_text = hex_text.strip()
    if not is_hex(hex_text, 2 * KEY_BYTES):
        raise InvalidKey("public key must be 64 hex digits")
    return PublicKey(bytes.fromhex(hex_text))


def encode_private_key(key: PrivateKey) -> str:
    return PRIVATE_PREFIX + bytes(key).hex()


def encode_public_key(key: PublicKey) -> str:
    return PUBLIC_PREFIX + bytes(key).hex()


@dataclass(frozen=True)
class KeyPair:
    """A Threema key pair; `private` never leaves the holder's process by design."""

    private: PrivateKey

    @property
    def public(self) -> PublicKey:
        return self.private.public_key

    @property
    def private_string(self) -> str:
        return encode_private_key(self.private)

    @property
    def public_string(self) -> str:
        return encode_public_key(self.public)

    @property
    def public_hex(self) -> str:
        return bytes(self.public).hex()

    def __repr__(self) -> str:  # keep private keys out of logs and tracebacks
        return f"KeyPair(public={self.public_string})"


def generate_key_pair() -> KeyPair:
    return KeyPair(PrivateKey.generate())


def key_pair_from_string(private_string: str) -> KeyPair:
    return KeyPair(decode_private_key(private_string))


def read_key_file(path: str | os.PathLike[str]) -> str:
    """Return the key string on the first line of `path`, stripped (SDK behaviour)."""
    with open(path, encoding="ascii", errors="strict") as handle:
        return handle.readline().strip()


def read_private_key_file(path: str | os.PathLike[str]) -> KeyPair:
    try:
        return key_pair_from_string(read_key_file(path))
    except UnicodeDecodeError as exc:
        raise InvalidKey("key file is not ASCII") from exc


def read_public_key_file(path: str | os.PathLike[str]) -> PublicKey:
    return decode_public_key(read_key_file(path))


def write_key_file(path: str | os.PathLike[str], key_string: str, *, overwrite: bool = False) -> Path:
    """Write `key_string` + newline to `path` with mode 0600 from the first byte on.

    The file is created with O_EXCL (unless `overwrite`) and mode 0600 at open time, so a
    private key is never readable by others, not even between create and chmod.
    """
    if not (key_string.startswith(PRIVATE_PREFIX) or key_string.startswith(PUBLIC_PREFIX)):
        raise InvalidKey("refusing to write something that is not a Threema key string")
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(target, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by umask and ignored for existing files
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            fd = -1
            handle.write(key_string + "\n")
    finally:
        if fd >= 0:
            os.close(fd)
    return target


def write_new_identity_key(identity: str, directory: str | os.PathLike[str]) -> tuple[Path, KeyPair]:
    """`orbitcast keys new`: generate a pair, write DIR/IDENTITY.key (0600), return both."""
    validate_identity(identity)
    pair = generate_key_pair()
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = write_key_file(Path(directory) / f"{identity}.key", pair.private_string)
    return path, pair
