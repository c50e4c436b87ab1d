"""The E2E envelope: box, nonce, type byte and strict padding."""

from __future__ import annotations

import pytest
from nacl.public import Box

from orbitcast.sealing.envelope import NONCE_BYTES, open_envelope, open_with_box, pad, padding_length, seal, unpad
from orbitcast.sealing.errors import BadMac, BadMessage, BadPadding
from orbitcast.sealing.keys import generate_key_pair


def test_seal_and_open_round_trip_with_separate_random_nonce() -> None:
    a, b = generate_key_pair(), generate_key_pair()
    one = seal(0x01, b"hello", a.private, b.public)
    two = seal(0x01, b"hello", a.private, b.public)
    assert len(one.nonce) == NONCE_BYTES and one.nonce != two.nonce
    assert one.box != two.box
    opened = open_envelope(one.nonce, one.box, b.private, a.public)
    assert (opened.type, opened.body) == (0x01, b"hello")


def test_box_is_pynacl_ciphertext_without_nonce() -> None:
    a, b = generate_key_pair(), generate_key_pair()
    sealed = seal(0x01, b"x" * 40, a.private, b.public, pad_len=7)
    plaintext = Box(b.private, a.public).decrypt(sealed.box, sealed.nonce)
    assert plaintext == b"\x01" + b"x" * 40 + b"\x07" * 7
    assert len(sealed.box) == 16 + len(plaintext)


def test_padding_rule_reaches_32_bytes_and_stays_in_range() -> None:
    lengths = {padding_length(0) for _ in range(200)}
    assert min(lengths) >= 32 and max(lengths) <= 255
    body_lengths = [padding_length(100) for _ in range(2000)]
    assert min(body_lengths) >= 1 and max(body_lengths) <= 255
    assert len(set(body_lengths)) > 100  # random, not a constant
    for n in range(0, 40):
        padded = pad(0x01, b"a" * n)
        assert len(padded) - 1 >= 32 and padded[-1] == len(padded) - 1 - n


def test_tampered_box_is_refused() -> None:
    a, b = generate_key_pair(), generate_key_pair()
    sealed = seal(0x01, b"hello", a.private, b.public)
    tampered = bytearray(sealed.box)
    tampered[20] ^= 0x01
    with pytest.raises(BadMac):
        open_envelope(sealed.nonce, bytes(tampered), b.private, a.public)


def test_wrong_sender_key_is_refused() -> None:
    a, b, c = generate_key_pair(), generate_key_pair(), generate_key_pair()
    sealed = seal(0x01, b"hello", a.private, b.public)
    with pytest.raises(BadMac):
        open_envelope(sealed.nonce, sealed.box, b.private, c.public)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"\x01" + b"a" * 40 + b"\x03\x03\x04",  # a padding byte differs from p
        b"\x01" + b"a" * 40 + b"\x00",  # p = 0
        b"\x01" + b"\x05" * 3,  # p longer than the payload
        b"\x01" + b"a" * 10 + b"\x02\x02",  # body + padding < 32
    ],
)
def test_bad_padding_is_refused(plaintext: bytes) -> None:
    a, b = generate_key_pair(), generate_key_pair()
    box = Box(a.private, b.public)
    nonce = b"\x07" * 24
    with pytest.raises(BadPadding):
        open_with_box(Box(b.private, a.public), nonce, box.encrypt(plaintext, nonce).ciphertext)


def test_unpad_accepts_exact_spec_layout() -> None:
    assert unpad(b"\x17" + b"b" * 31 + b"\x01").body == b"b" * 31
    with pytest.raises(BadMessage):
        unpad(b"\x01")


def test_short_nonce_or_box_is_bad_message() -> None:
    a, b = generate_key_pair(), generate_key_pair()
    with pytest.raises(BadMessage):
        open_envelope(b"\x00" * 23, b"\x00" * 64, b.private, a.public)
    with pytest.raises(BadMessage):
        open_envelope(b"\x00" * 24, b"\x00" * 16, b.private, a.public)
