"""The Threema E2E envelope: NaCl box over `type || body || padding`.

Sender side matches the SDK byte for byte in structure (random nonce sent separately, box =
Poly1305 MAC || ciphertext, padding `p = max(randint(1..255), 32 - len(body))` repeated `p`
times). The receiver is stricter than the SDK: every padding byte must equal `p`, `p` must
fit, and `body + padding` must reach 32 bytes, so a malformed plaintext from a buggy or
hostile sender is refused instead of being silently trimmed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import nacl.exceptions
from nacl.public import Box, PrivateKey, PublicKey

from .errors import BadMac, BadMessage, BadPadding

NONCE_BYTES = Box.NONCE_SIZE  # 24
MAC_BYTES = 16
MIN_PADDED_BODY = 32  # body + padding, as Threema requires
MAX_BOX_BYTES = 4000  # the gateway answers 413 above this


@dataclass(frozen=True)
class SealedEnvelope:
    """What `send_e2e` carries: the nonce and the box (MAC || ciphertext), both raw."""

    nonce: bytes
    box: bytes

    @property
    def nonce_hex(self) -> str:
        return self.nonce.hex()

    @property
    def box_hex(self) -> str:
        return self.box.hex()


@dataclass(frozen=True)
class OpenedEnvelope:
    type: int
    body: bytes


def padding_length(body_length: int) -> int:
    """Threema's rule: 1..255 random, but at least enough for 32 bytes of body+padding.

    `secrets.randbelow` is uniform like libsodium's `randombytes_uniform` the SDK uses; the
    length leaks nothing useful only if it is unpredictable, hence a CSPRNG.
    """
    return max(secrets.randbelow(255) + 1, MIN_PADDED_BODY - body_length)


def pad(type_byte: int, body: bytes, pad_len: int | None = None) -> bytes:
    """`type || body || bytes([p]) * p`; `pad_len` is for tests and must be 1..255."""
    if not 0 <= type_byte <= 0xFF:
        raise BadMessage("type must be one byte")
    p = padding_length(len(body)) if pad_len is None else pad_len
    if not 1 <= p <= 255:
        raise BadPadding("padding length must be 1..255")
    return bytes([type_byte]) + body + bytes([p]) * p


def unpad(plaintext: bytes) -> OpenedEnvelope:
    """Strictly undo `pad`: checks the length byte, every padding byte and the minimum size."""
    if len(plaintext) < 2:
        raise BadMessage("plaintext too short for type and padding")
    p = plaintext[-1]
    if p == 0:
        raise BadPadding("padding length 0")
    if p > len(plaintext) - 1:
        raise BadPadding("padding longer than the payload")
    # One comparison over the whole tail: equal work whatever byte differs.
    if plaintext[-p:] != bytes([p]) * p:
        raise BadPadding("padding bytes differ from the padding length")
    if len(plaintext) - 1 < MIN_PADDED_BODY:
        raise BadPadding("body and padding shorter than 32 bytes")
    return OpenedEnvelope(type=plaintext[0], body=bytes(plaintext[1:-p]))


def seal(
    type_byte: int,
    body: bytes,
    sender: PrivateKey,
    recipient: PublicKey,
    *,
    nonce: bytes | None = None,
    pad_len: int | None = None,
) -> SealedEnvelope:
    """Seal one E2E message from `sender` to `recipient` with a fresh random nonce."""
    return seal_with_box(Box(sender, recipient), type_byte, body, nonce=nonce, pad_len=pad_len)


def seal_with_box(
    box: Box, type_byte: int, body: bytes, *, nonce: bytes | None = None, pad_len: int | None = None
) -> SealedEnvelope:
    """Same as `seal` with a precomputed `Box` (the Curve25519 step costs ~50 us per pair;
    a packager sending every segment to the same recipients keeps one Box per recipient)."""
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise BadMessage("nonce must be 24 bytes")
    encrypted = box.encrypt(pad(type_byte, body, pad_len), nonce)
    return SealedEnvelope(nonce=nonce, box=encrypted.ciphertext)


def open_envelope(nonce: bytes, box: bytes, recipient: PrivateKey, sender: PublicKey) -> OpenedEnvelope:
    """Open and strictly unpad. Raises BadMac (tampered / wrong key), BadPadding, BadMessage."""
    return open_with_box(Box(recipient, sender), nonce, box)


def open_with_box(box: Box, nonce: bytes, sealed: bytes) -> OpenedEnvelope:
    if len(nonce) != NONCE_BYTES:
        raise BadMessage("nonce must be 24 bytes")
    if len(sealed) <= MAC_BYTES:
        raise BadMessage("box shorter than its MAC")
    try:
        plaintext = box.decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise BadMac("box does not authenticate") from exc
    return unpad(plaintext)
