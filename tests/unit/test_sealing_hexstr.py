"""Hex strings as Threema spells them: ids, nonces, keys and blob ids, whole strings only."""

from __future__ import annotations

from orbitcast.sealing.hexstr import is_blob_id, is_hex, is_lower_hex


def test_hex_of_either_case_and_the_asked_length_passes() -> None:
    assert is_hex("00aaFF", 6) and is_hex("0123456789abcdefABCDEF") and is_hex("")
    assert not is_hex("00aaFF", 8) and not is_hex("0g") and not is_hex("0x00")


def test_a_trailing_newline_is_not_hex() -> None:
    # A `$`-anchored pattern would let these through.
    assert not is_hex("00" * 8 + "\n")
    assert not is_hex("0" * 63 + "\n", 64)
    assert not is_blob_id("a" * 32 + "\n")


def test_blob_ids_are_32_lowercase_hex() -> None:
    assert is_blob_id("0123456789abcdef" * 2)
    assert not is_blob_id("0123456789ABCDEF" * 2)  # one spelling per id: it names a file
    assert not is_blob_id("a" * 31) and not is_blob_id("a" * 33)
    assert is_lower_hex("ab" * 32, 64) and not is_lower_hex("AB" * 32, 64)

