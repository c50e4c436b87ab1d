"""Threema key strings, key files and identities."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from nacl.public import Box, PrivateKey

from orbitcast.sealing.errors import InvalidIdentity, InvalidKey
from orbitcast.sealing.keys import (
    decode_private_key,
    decode_public_key,
    encode_public_key,
    generate_key_pair,
    public_key_from_hex,
    read_private_key_file,
    validate_identity,
    write_key_file,
    write_new_identity_key,
)


def test_key_strings_round_trip_and_accept_uppercase() -> None:
    pair = generate_key_pair()
    assert pair.private_string.startswith("private:") and len(pair.private_string) == 8 + 64
    assert pair.private_string == pair.private_string.lower()
    again = decode_private_key("private:" + pair.private_string.split(":", 1)[1].upper())
    assert bytes(again) == bytes(pair.private)
    assert bytes(decode_public_key(pair.public_string)) == bytes(pair.public)
    assert encode_public_key(public_key_from_hex(pair.public_hex)) == pair.public_string


def test_private_key_is_raw_curve25519_secret() -> None:
    # The SDK builds keys with PrivateKey(bytes.fromhex(hex)); a box between two of ours must open.
    a, b = generate_key_pair(), generate_key_pair()
    raw = PrivateKey(bytes.fromhex(a.private_string.split(":", 1)[1]))
    ct = Box(raw, b.public).encrypt(b"hello")
    assert Box(b.private, a.public).decrypt(ct) == b"hello"


@pytest.mark.parametrize(
    "text",
    ["public:" + "00" * 32, "private:" + "0" * 63, "private:" + "zz" * 32, "private" + "00" * 32, "", "private:" + "00" * 33],
)
def test_bad_private_key_strings_are_refused(text: str) -> None:
    with pytest.raises(InvalidKey):
        decode_private_key(text)


def test_invalid_key_message_does_not_echo_the_key() -> None:
    secret_hex = "ab" * 32
    with pytest.raises(InvalidKey) as info:
        decode_public_key("private:" + secret_hex)
    assert secret_hex not in str(info.value)


@pytest.mark.parametrize("identity", ["*ORBEDGE", "ECHOECHO", "*SUBSCR1", "ABCD1234"])
def test_valid_identities(identity: str) -> None:
    assert validate_identity(identity) == identity


@pytest.mark.parametrize("identity", ["*ORBEDG", "*ORBEDGEE", "*orbedge", "AB*D1234", "", "ÄBCD1234", "*ORBEDGE\n"])
def test_invalid_identities(identity: str) -> None:
    with pytest.raises(InvalidIdentity):
        validate_identity(identity)


def test_key_file_is_0600_first_line_only(tmp_path: Path) -> None:
    path, pair = write_new_identity_key("*SUBSCR1", tmp_path / "keys")
    assert path.name == "*SUBSCR1.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == pair.private_string + "\n"
    # Only the first line counts, stripped, as in the SDK.
    path.write_text("  " + pair.private_string + "  \ncomment: ignored\n")
    assert bytes(read_private_key_file(path).private) == bytes(pair.private)


def test_key_file_is_not_overwritten_by_default(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    write_key_file(path, generate_key_pair().private_string)
    with pytest.raises(FileExistsError):
        write_key_file(path, generate_key_pair().private_string)
    path.chmod(0o644)
    replacement = generate_key_pair().private_string
    write_key_file(path, replacement, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == replacement


def test_key_repr_hides_private_key() -> None:
    pair = generate_key_pair()
    assert pair.private_string.split(":")[1] not in repr(pair)
