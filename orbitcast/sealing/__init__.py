"""Threema-compatible end-to-end sealing of segments (pure Python, PyNaCl; never imports ray).

Modules: `keys` (key strings, key files, identities), `envelope` (NaCl box + padding),
`messages` (text / file / delivery receipt bodies), `blobs` (file blobs, `x` metadata,
fragmentation, reassembly), `callback` (callback fields and MAC), `receiver` (strict
recipient), `sealer` (packager side), `errors` (the exception hierarchy), `hexstr` (hex ids,
nonces and keys as Threema spells them).
"""

from .blobs import Reassembler, SegmentMeta, seal_file
from .callback import build_callback_fields, callback_mac, verify_callback
from .envelope import SealedEnvelope, open_envelope, seal
from .errors import (
    BadBlob,
    BadCallback,
    BadCallbackMac,
    BadDigest,
    BadMac,
    BadMessage,
    BadPadding,
    InvalidIdentity,
    InvalidKey,
    ReplayedMessage,
    SealingError,
    UnknownSender,
)
from .keys import KeyPair, decode_private_key, decode_public_key, generate_key_pair, read_private_key_file
from .messages import DeliveryReceipt, FileMessage, MessageType, ReceiptStatus, TextMessage
from .receiver import Received, Receiver
from .sealer import Outgoing, SealedSegment, SegmentSealer

__all__ = [
    "BadBlob", "BadCallback", "BadCallbackMac", "BadDigest", "BadMac", "BadMessage", "BadPadding",
    "DeliveryReceipt", "FileMessage", "InvalidIdentity", "InvalidKey", "KeyPair", "MessageType",
    "Outgoing", "Reassembler", "ReceiptStatus", "Received", "Receiver", "ReplayedMessage",
    "SealedEnvelope", "SealedSegment", "SealingError", "SegmentMeta", "SegmentSealer", "TextMessage",
    "UnknownSender", "build_callback_fields", "callback_mac", "decode_private_key", "decode_public_key",
    "generate_key_pair", "open_envelope", "read_private_key_file", "seal", "seal_file", "verify_callback",
]
