"""The incoming-message callback: fields, MAC and the receiver's checks.

The gateway POSTs urlencoded `from, to, messageId, date, nonce, box, mac[, nickname]` to the
recipient. `mac` is lowercase hex HMAC-SHA256 keyed with the recipient's API secret over the
concatenation of the six fields exactly as sent (nickname is not covered). The receiver
compares in constant time and refuses bodies over 16384 bytes, as the SDK does.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping
from urllib.parse import parse_qsl, urlencode

from .errors import BadCallback, BadCallbackMac
from .hexstr import is_hex
from .keys import IDENTITY_LENGTH

MAX_CALLBACK_BYTES = 16384
MAC_FIELDS = ("from", "to", "messageId", "date", "nonce", "box")
REQUIRED_FIELDS = MAC_FIELDS + ("mac",)


def callback_mac(secret: str, from_id: str, to_id: str, message_id: str, date: str, nonce: str, box: str) -> str:
    try:
        message = "".join((from_id, to_id, message_id, date, nonce, box)).encode("ascii")
        key = secret.encode("ascii")
    except UnicodeEncodeError as exc:
        raise BadCallback("callback fields must be ASCII") from exc
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def build_callback_fields(
    secret: str,
    *,
    from_id: str,
    to_id: str,
    message_id: str,
    date: int | str,
    nonce_hex: str,
    box_hex: str,
    nickname: str | None = None,
) -> dict[str, str]:
    fields = {
        "from": from_id,
        "to": to_id,
        "messageId": message_id,
        "date": str(date),
        "nonce": nonce_hex,
        "box": box_hex,
    }
    fields["mac"] = callback_mac(secret, *(fields[k] for k in MAC_FIELDS))
    if nickname:
        fields["nickname"] = nickname
    return fields


def encode_callback(fields: Mapping[str, str]) -> bytes:
    return urlencode(fields).encode("ascii")


def parse_callback_body(raw: bytes) -> dict[str, str]:
    """urlencoded body -> fields; size limit first, so a huge body is never parsed."""
    if len(raw) > MAX_CALLBACK_BYTES:
        raise BadCallback("callback body over 16384 bytes")
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadCallback("callback body is not urlencoded ASCII") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:  # ambiguity is how MAC-bypass bugs start
            raise BadCallback(f"duplicate field {name!r}")
        fields[name] = value
    return fields


@dataclass(frozen=True)
class CallbackMessage:
    """A verified callback: MAC checked, addressed to us, fields decoded."""

    from_id: str
    to_id: str
    message_id: str  # 16 hex, as sent
    date: datetime
    nonce: bytes
    box: bytes
    nickname: str | None

    @property
    def message_id_bytes(self) -> bytes:
        return bytes.fromhex(self.message_id)


def verify_callback(fields: Mapping[str, str], *, secret: str, self_id: str) -> CallbackMessage:
    """Check a callback as a strict receiver: fields present, MAC (constant time), `to`
    is us, `from` 8 chars, id/nonce/box hex. The MAC is checked first, so nothing else
    about an unauthenticated request influences the answer."""
    missing = [k for k in REQUIRED_FIELDS if k not in fields]
    if missing:
        raise BadCallback(f"missing {', '.join(missing)}")
    expected = callback_mac(secret, *(fields[k] for k in MAC_FIELDS))
    if not hmac.compare_digest(expected.encode("ascii"), fields["mac"].lower().encode("ascii", "replace")):
        raise BadCallbackMac("callback MAC does not match")
    if fields["to"] != self_id:
        raise BadCallback("callback is not addressed to us")
    if len(fields["from"]) != IDENTITY_LENGTH:
        raise BadCallback("from must be 8 characters")
    message_id, nonce, box = fields["messageId"], fields["nonce"], fields["box"]
    if not is_hex(message_id, 16):
        raise BadCallback("messageId must be 16 hex")
    if not is_hex(nonce, 48) or len(box) % 2 or not is_hex(box):
        raise BadCallback("nonce and box must be hex")
    try:
        date = datetime.fromtimestamp(float(fields["date"]), tz=timezone.utc)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadCallback("date must be unix seconds") from exc
    return CallbackMessage(
        from_id=fields["from"],
        to_id=fields["to"],
        message_id=message_id.lower(),
        date=date,
        nonce=bytes.fromhex(nonce),
        box=bytes.fromhex(box),
        nickname=fields.get("nickname") or None,
    )
