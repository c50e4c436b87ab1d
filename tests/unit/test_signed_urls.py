"""Signed viewer URLs: a token admits one feed until it expires (optionally from one address),
with either of two active keys; anything else is refused with a short reason."""

from __future__ import annotations

import pytest

from orbitcast.delivery.signed_urls import Refused, check, parse, sign, split_path

KEYS = {"old": "o" * 40, "new": "n" * 40}
NOW = 1_800_000_000


def admit(text: str, feed: str = "iss", now: float = NOW, ip: str | None = "203.0.113.7") -> None:
    check(KEYS, parse(text), feed, now, ip)


def test_a_token_admits_its_feed_until_it_expires() -> None:
    token = str(sign(KEYS, "new", "iss", NOW + 60))
    admit(token)
    admit(token, now=NOW + 59.9)
    with pytest.raises(Refused, match="expired"):
        admit(token, now=NOW + 60)


def test_both_keys_of_a_rotation_are_accepted() -> None:
    admit(str(sign(KEYS, "old", "iss", NOW + 60)))
    admit(str(sign(KEYS, "new", "iss", NOW + 60)))


def test_a_key_no_longer_configured_is_refused() -> None:
    token = str(sign({"gone": "g" * 40}, "gone", "iss", NOW + 60))
    with pytest.raises(Refused, match="unknown key"):
        admit(token)


def test_another_feed_is_refused() -> None:
    with pytest.raises(Refused, match="signature"):
        admit(str(sign(KEYS, "new", "iss", NOW + 60)), feed="mars")


@pytest.mark.parametrize("field,value", [(1, str(NOW + 10**6)), (2, "198.51.100.1"), (3, "A" * 43), (0, "old")])
def test_a_tampered_token_is_refused(field: int, value: str) -> None:
    fields = str(sign(KEYS, "new", "iss", NOW + 60)).split("~")
    fields[field] = value
    with pytest.raises(Refused, match="signature"):
        admit("~".join(fields))


def test_a_token_bound_to_an_address_admits_only_that_address() -> None:
    token = str(sign(KEYS, "new", "iss", NOW + 60, ip="203.0.113.7"))
    admit(token, ip="203.0.113.7")
    with pytest.raises(Refused, match="another client"):
        admit(token, ip="198.51.100.1")


@pytest.mark.parametrize("text", ["", "a~b~c", "new~soon~-~x", "new~1~-~" + "!" * 43, "x" * 300, "new~1~-~sig~extra", "new~1~a b~" + "A" * 43])
def test_malformed_tokens_are_refused(text: str) -> None:
    with pytest.raises(Refused, match="malformed"):
        parse(text)


def test_the_token_rides_in_the_path_ahead_of_the_feed() -> None:
    assert split_path("/live/t/TOKEN/iss/720p/1.2.m4s") == ("TOKEN", "/live/iss/720p/1.2.m4s")
    assert split_path("/live/iss/master.m3u8") == (None, "/live/iss/master.m3u8")
    for bad in ("/live/t/", "/live/t/TOKEN", "/live/t//iss/master.m3u8"):
        with pytest.raises(Refused):
            split_path(bad)
