"""Text, file and delivery-receipt bodies."""

from __future__ import annotations

import json

import pytest

from orbitcast.sealing.errors import BadMessage
from orbitcast.sealing.messages import (
    DeliveryReceipt,
    FileMessage,
    MessageType,
    ReceiptStatus,
    RenderingType,
    TextMessage,
    decode_message,
)


def test_text_round_trip_utf8() -> None:
    body = TextMessage("Grüße vom Orbit 🛰").encode()
    assert body == "Grüße vom Orbit 🛰".encode("utf-8")
    assert decode_message(0x01, body) == TextMessage("Grüße vom Orbit 🛰")
    with pytest.raises(BadMessage):
        decode_message(0x01, b"\xff\xfe")


def test_receipt_layout_and_length_rule() -> None:
    ids = (bytes.fromhex("0011223344556677"), bytes.fromhex("8899aabbccddeeff"))
    body = DeliveryReceipt(ReceiptStatus.RECEIVED, ids).encode()
    assert body == b"\x01" + ids[0] + ids[1]
    decoded = decode_message(0x80, body)
    assert isinstance(decoded, DeliveryReceipt) and decoded.message_ids == ids
    for bad in (b"\x01", b"\x01" + b"\x00" * 7, b"\x01" + b"\x00" * 9, b"\x09" + b"\x00" * 8):
        with pytest.raises(BadMessage):
            decode_message(0x80, bad)


def _file(**extra: object) -> FileMessage:
    defaults: dict[str, object] = dict(
        blob_id="0123456789abcdef0123456789abcdef", key=bytes(range(32)), mime_type="video/mp4", file_name="s.m4s", size=42
    )
    defaults.update(extra)
    return FileMessage(**defaults)  # type: ignore[arg-type]


def test_file_json_is_compact_ascii_with_threema_keys() -> None:
    msg = _file(caption="Überflug", thumbnail_blob_id="f" * 32, thumbnail_mime_type="image/jpeg",
                rendering=RenderingType.MEDIA, x={"feed": "iss", "d": 2.0})
    body = msg.encode()
    body.decode("ascii")  # ensure_ascii: SDK 8.0.0 decodes as ASCII
    assert b", " not in body and b": " not in body
    content = json.loads(body)
    assert content["b"] == msg.blob_id and content["k"] == bytes(range(32)).hex()
    assert (content["m"], content["n"], content["s"], content["i"]) == ("video/mp4", "s.m4s", 42, 0)
    assert (content["d"], content["t"], content["p"], content["j"]) == ("Überflug", "f" * 32, "image/jpeg", 1)
    assert decode_message(MessageType.FILE, body) == msg


def test_file_decode_ignores_unknown_keys() -> None:
    content = _file().to_json()
    content["future"] = {"anything": [1, 2]}
    decoded = FileMessage.decode(json.dumps(content).encode())
    assert decoded == _file()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.pop("b"),
        lambda c: c.update(k="zz" * 32),
        lambda c: c.update(b="not-a-blob-id"),
        lambda c: c.update(s=-1),
        lambda c: c.update(s="42"),
        lambda c: c.update(j=9),
        lambda c: c.update(x=[1]),
    ],
)
def test_malformed_file_json_is_refused(mutate: object) -> None:
    content = _file().to_json()
    mutate(content)  # type: ignore[operator]
    with pytest.raises(BadMessage):
        FileMessage.decode(json.dumps(content).encode())


def test_unsupported_type_and_non_json_are_refused() -> None:
    with pytest.raises(BadMessage):
        decode_message(0x02, b"image")
    with pytest.raises(BadMessage):
        decode_message(0x17, b"not json")


def test_file_repr_hides_key() -> None:
    assert bytes(range(32)).hex() not in repr(_file())
