"""E2E message bodies: text (0x01), file (0x17) and delivery receipt (0x80).

These are the bytes between the type byte and the padding. Decoding is strict about what
Threema requires (UTF-8 text, ASCII compact JSON with b/k/m/n/s, receipt length 1 + 8N) and
lenient about what Threema allows to grow (unknown JSON keys are ignored, as the spec says).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Union

from .errors import BadMessage
from .hexstr import is_blob_id, is_hex


class MessageType(IntEnum):
    TEXT = 0x01
    IMAGE = 0x02
    VIDEO = 0x13
    FILE = 0x17
    DELIVERY_RECEIPT = 0x80


class ReceiptStatus(IntEnum):
    RECEIVED = 1
    READ = 2
    ACKNOWLEDGED = 3
    DECLINED = 4


class RenderingType(IntEnum):
    FILE = 0
    MEDIA = 1
    STICKER = 2


MESSAGE_ID_BYTES = 8


@dataclass(frozen=True)
class TextMessage:
    text: str

    type = MessageType.TEXT

    def encode(self) -> bytes:
        return self.text.encode("utf-8")

    @classmethod
    def decode(cls, body: bytes) -> "TextMessage":
        try:
            return cls(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BadMessage("text is not UTF-8") from exc


@dataclass(frozen=True)
class DeliveryReceipt:
    status: ReceiptStatus
    message_ids: tuple[bytes, ...]

    type = MessageType.DELIVERY_RECEIPT

    def __post_init__(self) -> None:
        if not self.message_ids:
            raise BadMessage("a delivery receipt names at least one message")
        if any(len(m) != MESSAGE_ID_BYTES for m in self.message_ids):
            raise BadMessage("message ids are 8 bytes")

    @property
    def message_ids_hex(self) -> tuple[str, ...]:
        return tuple(m.hex() for m in self.message_ids)

    def encode(self) -> bytes:
        return bytes([int(self.status)]) + b"".join(self.message_ids)

    @classmethod
    def decode(cls, body: bytes) -> "DeliveryReceipt":
        if len(body) < 1 + MESSAGE_ID_BYTES or (len(body) - 1) % MESSAGE_ID_BYTES:
            raise BadMessage("delivery receipt length must be 1 + 8N, N >= 1")
        try:
            status = ReceiptStatus(body[0])
        except ValueError as exc:
            raise BadMessage("unknown receipt status") from exc
        ids = tuple(bytes(body[i : i + MESSAGE_ID_BYTES]) for i in range(1, len(body), MESSAGE_ID_BYTES))
        return cls(status, ids)


@dataclass(frozen=True)
class FileMessage:
    """The JSON file message. `key` is the 32-byte blob key; `x` is free-form metadata."""

    blob_id: str
    key: bytes
    mime_type: str
    file_name: str
    size: int
    caption: str | None = None
    thumbnail_blob_id: str | None = None
    thumbnail_mime_type: str | None = None
    rendering: RenderingType | None = None
    x: dict[str, Any] = field(default_factory=dict)

    type = MessageType.FILE

    def __repr__(self) -> str:  # the blob key is a secret
        return f"FileMessage(blob_id={self.blob_id!r}, name={self.file_name!r}, size={self.size}, x={self.x!r})"

    def to_json(self) -> dict[str, Any]:
        content: dict[str, Any] = {
            "b": self.blob_id,
            "k": self.key.hex(),
            "m": self.mime_type,
            "n": self.file_name,
            "s": self.size,
            "i": 0,  # deprecated "inline" flag; Threema still sends 0
        }
        if self.caption:
            content["d"] = self.caption
        if self.thumbnail_blob_id is not None:
            content["t"] = self.thumbnail_blob_id
            if self.thumbnail_mime_type:
                content["p"] = self.thumbnail_mime_type
        if self.rendering is not None:
            content["j"] = int(self.rendering)
        if self.x:
            content["x"] = self.x
        return content

    def encode(self) -> bytes:
        # ensure_ascii: SDK 8.0.0 decodes the body as ASCII; compact separators as the SDK does.
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @classmethod
    def decode(cls, body: bytes) -> "FileMessage":
        try:
            content = json.loads(body.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadMessage("file message is not ASCII JSON") from exc
        if not isinstance(content, dict):
            raise BadMessage("file message JSON is not an object")
        try:
            blob_id, key_hex, mime, name, size = (content[k] for k in ("b", "k", "m", "n", "s"))
        except KeyError as exc:
            raise BadMessage(f"file message lacks {exc.args[0]!r}") from exc
        if not isinstance(blob_id, str) or not is_blob_id(blob_id.lower()):
            raise BadMessage("blob id must be 32 hex")
        if not isinstance(key_hex, str) or not is_hex(key_hex, 64):
            raise BadMessage("blob key must be 64 hex")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadMessage("size must be a non-negative integer")
        if not isinstance(mime, str) or not isinstance(name, str):
            raise BadMessage("mime type and name must be strings")
        thumb = content.get("t")
        if thumb is not None and (not isinstance(thumb, str) or not is_blob_id(thumb.lower())):
            raise BadMessage("thumbnail blob id must be 32 hex")
        rendering_raw = content.get("j")
        try:
            rendering = RenderingType(rendering_raw) if rendering_raw is not None else None
        except ValueError as exc:
            raise BadMessage("unknown rendering type") from exc
        x = content.get("x") or {}
        if not isinstance(x, dict):
            raise BadMessage("x must be an object")
        caption = content.get("d")
        return cls(
            blob_id=blob_id.lower(),
            key=bytes.fromhex(key_hex),
            mime_type=mime,
            file_name=name,
            size=size,
            caption=caption if isinstance(caption, str) else None,
            thumbnail_blob_id=thumb.lower() if thumb else None,
            thumbnail_mime_type=content.get("p") if isinstance(content.get("p"), str) else None,
            rendering=rendering,
            x=x,
        )


Message = Union[TextMessage, FileMessage, DeliveryReceipt]

_DECODERS = {
    MessageType.TEXT: TextMessage.decode,
    MessageType.FILE: FileMessage.decode,
    MessageType.DELIVERY_RECEIPT: DeliveryReceipt.decode,
}


def decode_message(type_byte: int, body: bytes) -> Message:
    """Decode a body by its type byte; image/video (0x02/0x13) and others are refused."""
    decoder = _DECODERS.get(type_byte)  # type: ignore[call-overload]
    if decoder is None:
        raise BadMessage(f"unsupported message type 0x{type_byte:02x}")
    return decoder(body)
