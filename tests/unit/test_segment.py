"""Segment records: digest on creation, verification at hand-offs, bitrate."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timezone

import pytest

from orbitcast.segment import DigestMismatch, Segment, sha256_hex

PDT = datetime(2024, 1, 1, tzinfo=timezone.utc)


def make(data: bytes = b"\x00\x01payload" * 100, duration: float = 2.0, **kw) -> Segment:
    return Segment("iss", "360p", 7, 14.0, duration, PDT, data, **kw)


def test_digest_is_sha256_of_the_bytes() -> None:
    s = make()
    assert s.digest == hashlib.sha256(s.data).hexdigest()
    assert s.digest == sha256_hex(s.data)
    assert len(s.digest) == 64
    assert s.size == len(s.data)


def test_given_digest_is_kept() -> None:
    s = make(digest="ab" * 32)
    assert s.digest == "ab" * 32


def test_verified_passes_on_intact_bytes() -> None:
    s = make()
    assert s.verified() is s


def test_changed_byte_raises_digest_mismatch() -> None:
    s = make()
    for i in (0, len(s.data) // 2, len(s.data) - 1):
        data = bytearray(s.data)
        data[i] ^= 0x01
        tampered = dataclasses.replace(s, data=bytes(data))  # keeps the original digest
        assert tampered.digest == s.digest
        with pytest.raises(DigestMismatch) as info:
            tampered.verified()
        msg = str(info.value)
        assert "iss/360p/7" in msg
        assert s.digest in msg


def test_truncated_and_wrong_digest() -> None:
    s = make()
    with pytest.raises(DigestMismatch):
        dataclasses.replace(s, data=s.data[:-1]).verified()
    with pytest.raises(DigestMismatch):
        make(digest="0" * 64).verified()
    assert issubclass(DigestMismatch, ValueError)


@pytest.mark.parametrize("size,duration,bps", [(250_000, 2.0, 1_000_000), (1, 1.0, 8), (1000, 0.5, 16_000), (300, 3.0, 800)])
def test_bitrate(size: int, duration: float, bps: int) -> None:
    assert make(b"x" * size, duration).bitrate == bps


def test_bitrate_of_zero_duration_is_zero() -> None:
    assert make(b"x" * 100, 0.0).bitrate == 0


def test_repr_hides_the_bytes_and_segment_is_frozen() -> None:
    s = make(b"SECRET-BYTES")
    assert "SECRET-BYTES" not in repr(s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seq = 8  # type: ignore[misc]


def test_parts_that_tile_the_bytes_are_kept() -> None:
    assert make(b"aaabbbbcc", parts=(3, 4, 2)).parts == (3, 4, 2)


@pytest.mark.parametrize("parts", [(3, 4), (3, 4, 3), (9, 0), (10, -1)])
def test_parts_that_do_not_tile_the_bytes_are_refused(parts: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="do not tile"):
        make(b"aaabbbbcc", parts=parts)
