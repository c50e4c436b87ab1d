"""The ledger's Ed25519 signing key on disk: 32-byte seed, hex, one line, mode 0600."""

from __future__ import annotations

import os
from pathlib import Path

from nacl.signing import SigningKey


def load_or_create_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """Load the key at `path`, or create it there: the log's identity must survive restarts,
    because heads signed before a restart must verify under the key published after it."""
    p = Path(path)
    if p.exists():
        seed = bytes.fromhex(p.read_text().strip())
        if len(seed) != 32:
            raise ValueError(f"{p}: not a 32-byte Ed25519 seed")
        return SigningKey(seed)
    p.parent.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()
    # Create with 0600 from the start rather than chmod after: no window where it is readable.
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(bytes(key).hex() + "\n")
    return key
