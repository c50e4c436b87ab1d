"""Exceptions raised by the sealing library.

Every refusal is a `SealingError`, so a caller that only needs "accept or refuse" catches one
class, while tests and counters can tell the reasons apart::

    SealingError
    ├── InvalidKey            key string or key file is not Threema's `private:`/`public:` + 64 hex
    ├── InvalidIdentity       not an 8-character Threema ID
    ├── BadMessage            decrypted plaintext is malformed (type, body, JSON, receipt length)
    │   └── BadPadding        PKCS#7-style padding is inconsistent (strict receiver only)
    ├── BadMac                a NaCl box or secretbox did not authenticate: tampered or wrong key
    ├── BadBlob               a blob is unusable: size differs from `s`, unknown fragment layout
    │   └── BadDigest         the sha256 in `x.digest` does not match the opened bytes
    ├── BadCallback           callback fields rejected (missing field, `to` not us, `from` length, size)
    │   └── BadCallbackMac    the callback HMAC does not match the API secret
    ├── UnknownSender         no public key is known for the sending identity
    └── ReplayedMessage       message id (or box nonce) was already accepted; callers answer 200
                              without processing again, since the gateway delivers at least once

`reason` is a short, secret-free string suitable for logs and counters.
"""

from __future__ import annotations


class SealingError(Exception):
    """Base class: the input was refused. `reason` is short and safe to log."""

    #: short machine-friendly name used for counters (e.g. "bad_mac")
    code: str = "sealing_error"

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or self.code)
        self.reason = reason or self.code


class InvalidKey(SealingError):
    code = "invalid_key"


class InvalidIdentity(SealingError):
    code = "invalid_identity"


class BadMessage(SealingError):
    code = "bad_message"


class BadPadding(BadMessage):
    code = "bad_padding"


class BadMac(SealingError):
    code = "bad_mac"


class BadBlob(SealingError):
    code = "bad_blob"


class BadDigest(BadBlob):
    code = "bad_digest"


class BadCallback(SealingError):
    code = "bad_callback"


class BadCallbackMac(BadCallback):
    code = "bad_callback_mac"


class UnknownSender(SealingError):
    code = "unknown_sender"


class ReplayedMessage(SealingError):
    code = "replayed_message"
