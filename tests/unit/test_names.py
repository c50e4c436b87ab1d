"""Names in delivery URLs: what passes can be a store key; everything else is a 400."""

from __future__ import annotations

import pytest

from orbitcast.delivery.names import BadName, check_name, parse_segment_name


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


@pytest.mark.parametrize("name,seq", [("0.m4s", 0), ("12.m4s", 12), ("7.m4s", 7), ("999999999999999999.m4s", 999999999999999999)])
def test_valid_segment_names(name: str, seq: int) -> None:
    assert parse_segment_name(name) == seq


@pytest.mark.parametrize(
    "name",
    [
        "012.m4s", "00.m4s", "-1.m4s", "+1.m4s", "1.ts", "1.mp4", "1.M4S", "1.m4s.", "1.m4s/", "1..m4s",
        ".m4s", "m4s", "1", "", "../x", "../1.m4s", "a/1.m4s", "1.m4s\nx", " 1.m4s", "1 .m4s",
        "١٢.m4s",  # Arabic-Indic digits match \d but not [0-9]
        "１.m4s", "1e3.m4s", "0x1.m4s", "init.mp4", "index.m3u8",
        "1" * 19 + ".m4s", "9" * 1000 + ".m4s",
    ],
)
def test_malformed_segment_names(name: str) -> None:
    with pytest.raises(BadName, match="segment"):
        parse_segment_name(name)




def test_name_with_trailing_newline_is_malformed() -> None:
    with pytest.raises(BadName):
        check_name("iss\n", "feed")


def test_segment_name_with_trailing_newline_is_malformed() -> None:
    with pytest.raises(BadName):
        parse_segment_name("12.m4s\n")
