"""Names in delivery URLs: what passes can be a store key; everything else is a 400."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitcast.delivery.names import (
    MAX_PART_INDEX,
    BadName,
    check_name,
    init_tag,
    init_uri,
    parse_media_name,
    part_name,
    segment_name,
)

# No example database in the working tree; no deadline, since CI machines stall at times.
SETTINGS = settings(database=None, deadline=None)


@pytest.mark.parametrize("name", ["iss", "ISS-2", "cam_1", "720p", "a", "0", "x" * 64, "A-_-b"])
def test_valid_names(name: str) -> None:
    assert check_name(name, "feed") == name
    assert check_name(name, "rendition") == name


@pytest.mark.parametrize(
    "name",
    [
        "", ".", "..", "../x", "a/b", "a\\b", "/abs", "-lead", "_lead", "a.b", "a b", " a", "a\nb",
        "a\x00", "é", "ｉｓｓ", "💫", "x" * 65, "x" * 10_000, "%2e%2e", "a?b", "a#b",
    ],
)
def test_malformed_names(name: str) -> None:
    with pytest.raises(BadName) as info:
        check_name(name, "feed")
    assert "feed" in str(info.value)


def test_bad_name_is_a_value_error_without_echoing_input() -> None:
    with pytest.raises(ValueError) as info:
        check_name("<script>", "rendition")
    assert "<script>" not in str(info.value)
    assert "rendition" in str(info.value)


def test_name_with_trailing_newline_is_malformed() -> None:
    with pytest.raises(BadName):
        check_name("iss\n", "feed")


# -- media names: {seq}.m4s and {seq}.{index}.m4s -------------------------------------------------
@pytest.mark.parametrize(
    "name,expected",
    [
        ("0.m4s", (0, None)),
        ("12.m4s", (12, None)),
        ("7.m4s", (7, None)),
        ("999999999999999999.m4s", (999999999999999999, None)),
        ("1700000000.m4s", (1700000000, None)),
        ("0.0.m4s", (0, 0)),
        ("1700000000.3.m4s", (1700000000, 3)),
        ("5.10.m4s", (5, 10)),
        (f"5.{MAX_PART_INDEX}.m4s", (5, MAX_PART_INDEX)),
    ],
)
def test_valid_media_names(name: str, expected: tuple[int, int | None]) -> None:
    assert parse_media_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "012.m4s", "00.m4s", "-1.m4s", "+1.m4s", "1.ts", "1.mp4", "1.M4S", "1.m4s.", "1.m4s/", "1..m4s",
        ".m4s", "m4s", "1", "", "../x", "../1.m4s", "a/1.m4s", "1.m4s\nx", " 1.m4s", "1 .m4s",
        "١٢.m4s",  # Arabic-Indic digits match \d but not [0-9]
        "１.m4s", "1e3.m4s", "0x1.m4s", "init.mp4", "index.m3u8",
        "1" * 19 + ".m4s", "9" * 1000 + ".m4s",
        # parts
        "1.01.m4s", "1.00.m4s", "1.1000.m4s", "1.-1.m4s", "1.+1.m4s", "1.0.0.m4s", "1.a.m4s", "1. 0.m4s",
        "1.0", "1.0.mp4", "1.0.m4s.", ".0.m4s", "1.١.m4s", "01.0.m4s", "1.0.M4S", "1.0.m4s\n",
    ],
)
def test_malformed_media_names(name: str) -> None:
    with pytest.raises(BadName, match="segment"):
        parse_media_name(name)


def test_media_name_with_trailing_newline_is_malformed() -> None:
    with pytest.raises(BadName):
        parse_media_name("12.m4s\n")


@SETTINGS
@given(st.integers(0, 10**18 - 1), st.none() | st.integers(0, MAX_PART_INDEX))
def test_built_names_parse_back(seq: int, index: int | None) -> None:
    name = segment_name(seq) if index is None else part_name(seq, index)
    assert parse_media_name(name) == (seq, index)


@SETTINGS
@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_bad_name(value: str) -> None:
    try:
        seq, index = parse_media_name(value)
    except BadName:
        return
    # whatever passes has exactly one spelling
    assert value == (segment_name(seq) if index is None else part_name(seq, index))


def test_init_tag_and_uri() -> None:
    data = b"\x00\x00\x00\x18ftypcmfc"
    tag = init_tag(data)
    assert tag == hashlib.sha256(data).hexdigest()[:12]
    assert init_uri(tag) == f"init.mp4?v={tag}"
    assert init_tag(data + b"x") != tag
