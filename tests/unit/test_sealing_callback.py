"""Callback fields and MAC, checked the way the SDK's callback checks them."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs

import pytest

from orbitcast.sealing.callback import (
    MAX_CALLBACK_BYTES,
    build_callback_fields,
    callback_mac,
    encode_callback,
    parse_callback_body,
    verify_callback,
)
from orbitcast.sealing.errors import BadCallback, BadCallbackMac

SECRET = "s3cr3t-api"


def _fields(**overrides: str) -> dict[str, str]:
    fields = build_callback_fields(
        SECRET, from_id="*ORBPACK", to_id="*ORBEDGE", message_id="0011223344556677", date=1700000000,
        nonce_hex="ab" * 24, box_hex="cd" * 60, nickname="packager",
    )
    fields.update(overrides)
    return fields


def test_mac_is_hmac_sha256_over_concatenated_fields() -> None:
    fields = _fields()
    message = ("*ORBPACK" + "*ORBEDGE" + "0011223344556677" + "1700000000" + "ab" * 24 + "cd" * 60).encode()
    assert fields["mac"] == hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert "nickname" in fields  # sent, but not covered by the MAC
    assert callback_mac(SECRET, *(fields[k] for k in ("from", "to", "messageId", "date", "nonce", "box"))) == fields["mac"]


def test_verify_accepts_valid_fields_and_ignores_nickname_changes() -> None:
    message = verify_callback(_fields(nickname="other"), secret=SECRET, self_id="*ORBEDGE")
    assert message.from_id == "*ORBPACK" and message.message_id_bytes == bytes.fromhex("0011223344556677")
    assert message.nonce == b"\xab" * 24 and message.box == b"\xcd" * 60
    assert int(message.date.timestamp()) == 1700000000


def test_wrong_mac_is_refused() -> None:
    with pytest.raises(BadCallbackMac):
        verify_callback(_fields(mac="0" * 64), secret=SECRET, self_id="*ORBEDGE")
    with pytest.raises(BadCallbackMac):
        verify_callback(_fields(), secret="another secret", self_id="*ORBEDGE")
    with pytest.raises(BadCallbackMac):  # any covered field changed after MAC
        verify_callback(_fields(box="cd" * 59 + "ce"), secret=SECRET, self_id="*ORBEDGE")


def test_not_addressed_to_us_is_refused() -> None:
    with pytest.raises(BadCallback):
        verify_callback(_fields(), secret=SECRET, self_id="*OTHERID")


def test_from_must_be_8_chars_even_with_valid_mac() -> None:
    fields = build_callback_fields(SECRET, from_id="*SHORT", to_id="*ORBEDGE", message_id="00" * 8, date=1,
                                   nonce_hex="ab" * 24, box_hex="cd" * 40)
    with pytest.raises(BadCallback):
        verify_callback(fields, secret=SECRET, self_id="*ORBEDGE")


def test_missing_field_is_refused() -> None:
    fields = _fields()
    del fields["date"]
    with pytest.raises(BadCallback):
        verify_callback(fields, secret=SECRET, self_id="*ORBEDGE")


def test_body_size_limit_and_duplicates() -> None:
    body = encode_callback(_fields())
    assert parse_qs(body.decode())["mac"] == [_fields()["mac"]]
    assert parse_callback_body(body) == _fields()
    with pytest.raises(BadCallback):
        parse_callback_body(body + b"&pad=" + b"x" * MAX_CALLBACK_BYTES)
    with pytest.raises(BadCallback):
        parse_callback_body(body + b"&box=00")
