"""File blobs, `x` metadata, fragmentation and reassembly."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import pytest
from nacl.secret import SecretBox

from orbitcast.sealing.blobs import (
    FILE_NONCE,
    THUMBNAIL_NONCE,
    Reassembler,
    SegmentMeta,
    decrypt_blob,
    encrypt_blob,
    fragment_position,
    open_file_blob,
    seal_file,
    sha256_hex,
)
from orbitcast.sealing.errors import BadBlob, BadDigest, BadMac, BadMessage

PDT = datetime(2031, 5, 4, 12, 30, 15, 250000, tzinfo=timezone.utc)


def _meta(data: bytes, seq: int = 7) -> SegmentMeta:
    return SegmentMeta.for_data(data, feed="iss", rendition="360p", seq=seq, duration=2.002, program_date_time=PDT)


def test_blob_uses_fixed_nonces_and_no_nonce_prefix() -> None:
    key = os.urandom(32)
    blob = encrypt_blob(key, b"segment")
    assert blob == SecretBox(key).encrypt(b"segment", FILE_NONCE).ciphertext
    assert len(blob) == 16 + 7
    thumb = encrypt_blob(key, b"thumb", thumbnail=True)
    assert SecretBox(key).decrypt(thumb, THUMBNAIL_NONCE) == b"thumb"
    assert FILE_NONCE == b"\x00" * 23 + b"\x01" and THUMBNAIL_NONCE == b"\x00" * 23 + b"\x02"


def test_tampered_blob_is_refused() -> None:
    key = os.urandom(32)
    blob = bytearray(encrypt_blob(key, b"segment bytes"))
    blob[-1] ^= 0x80
    with pytest.raises(BadMac):
        decrypt_blob(key, bytes(blob))


def test_x_metadata_round_trip() -> None:
    meta = _meta(b"abc")
    x = meta.to_x()
    assert x["pdt"] == "2031-05-04T12:30:15.250Z"
    assert x["d"] == 2.002 and x["seq"] == 7 and x["digest"] == sha256_hex(b"abc")
    assert SegmentMeta.from_x(dict(x, unknown="ignored")) == meta
    with pytest.raises(BadMessage):
        SegmentMeta.from_x({k: v for k, v in x.items() if k != "seq"})


def test_small_segment_is_one_blob_that_opens() -> None:
    data = os.urandom(10_000)
    sealed = seal_file(data, _meta(data), max_blob_bytes=20_000)
    assert len(sealed.parts) == 1 and fragment_position(sealed.parts[0].x) is None
    message = sealed.file_messages(["a" * 32])[0]
    assert message.size == len(data) and message.x["digest"] == sha256_hex(data)
    assert open_file_blob(message, sealed.parts[0].blob) == data


def test_size_mismatch_with_s_is_refused() -> None:
    data = os.urandom(100)
    sealed = seal_file(data, _meta(data))
    message = sealed.file_messages(["a" * 32])[0]
    lying = type(message)(**{**message.__dict__, "size": 99})
    with pytest.raises(BadBlob):
        open_file_blob(lying, sealed.parts[0].blob)


def test_large_segment_fragments_with_distinct_keys_and_reassembles() -> None:
    data = os.urandom(25_000)
    sealed = seal_file(data, _meta(data), max_blob_bytes=10_016)
    assert [p.x["part"] for p in sealed.parts] == [1, 2, 3]
    assert {p.x["parts"] for p in sealed.parts} == {3}
    assert all(len(p.blob) <= 10_016 for p in sealed.parts)
    assert len({p.key for p in sealed.parts}) == 3  # fixed nonce => never reuse a key
    messages = sealed.file_messages([f"{i:032x}" for i in range(3)])
    chunks = [open_file_blob(m, p.blob) for m, p in zip(messages, sealed.parts)]
    reassembler = Reassembler()
    meta = SegmentMeta.from_x(messages[0].x)
    assert reassembler.add("*ORBPACK", meta, 3, 3, chunks[2]) is None
    assert reassembler.add("*ORBPACK", meta, 1, 3, chunks[0]) is None
    assert reassembler.add("*ORBPACK", meta, 1, 3, chunks[0]) is None  # duplicate delivery
    assert list(reassembler.missing().values()) == [[2]]
    assert reassembler.add("*ORBPACK", meta, 2, 3, chunks[1]) == data
    assert len(reassembler) == 0


def test_reassembly_detects_wrong_digest() -> None:
    data = os.urandom(3000)
    meta = _meta(data)
    reassembler = Reassembler()
    reassembler.add("*ORBPACK", meta, 1, 2, data[:1500])
    with pytest.raises(BadDigest):
        reassembler.add("*ORBPACK", meta, 2, 2, bytes(1500))


def test_reassembler_reports_expired_gaps_and_bounds_memory() -> None:
    data = os.urandom(300)
    reassembler = Reassembler(max_pending=2, max_age_s=10)
    for seq in range(3):
        reassembler.add("*ORBPACK", _meta(data, seq), 1, 3, data[:100])
    assert sorted(key[3] for key in reassembler.missing()) == [1, 2]
    dropped = reassembler.expire(now=time.monotonic() + 11)
    assert sorted(dropped.values()) == [[2, 3], [2, 3]] and len(reassembler) == 0


def test_seal_refuses_meta_that_does_not_match() -> None:
    with pytest.raises(BadDigest):
        seal_file(b"abc", _meta(b"abd"))


def test_bad_fragment_numbers_are_refused() -> None:
    for x in ({"part": 0, "parts": 2}, {"part": 3, "parts": 2}, {"part": "a", "parts": 2}, {"parts": 2}):
        with pytest.raises(BadMessage):
            fragment_position(x)


def test_an_ll_hls_part_travels_with_its_index_and_keyframe_flag() -> None:
    from orbitcast.sealed_delivery import part_from, part_meta
    from orbitcast.segment import Part

    part = Part("iss", "360p", 866_000_123, 3, 1.7e9, 0.2, False, datetime(2026, 11, 25, tzinfo=timezone.utc), b"moof+mdat")
    meta = part_meta(part)
    x = meta.to_x()
    assert (x["kind"], x["seq"], x["part_index"], x["independent"]) == ("part", 866_000_123, 3, False)
    back = SegmentMeta.from_x(x)
    assert back == meta
    sealed = seal_file(part.data, meta)
    opened = part_from(back, open_file_blob(sealed.file_messages(["00" * 16])[0], sealed.parts[0].blob), None)
    assert (opened.seq, opened.index, opened.duration, opened.digest, opened.data) == (part.seq, 3, 0.2, part.digest, part.data)
    with pytest.raises(BadMessage):
        SegmentMeta.from_x({**x, "part_index": -1})


def test_a_part_and_a_segment_name_the_init_they_play_with() -> None:
    from orbitcast.delivery.names import init_tag
    from orbitcast.sealed_delivery import meta_of, part_meta
    from orbitcast.segment import Part, Segment

    tag = init_tag(b"ftyp+moov")
    when = datetime(2026, 11, 25, tzinfo=timezone.utc)
    part = Part("iss", "360p", 7, 0, 1.7e9, 0.2, True, when, b"moof+mdat")
    seg = Segment("iss", "360p", 7, 1.4e9, 1.0, when, b"moof+mdat" * 5)
    for meta in (part_meta(part, tag), meta_of(seg, tag)):
        assert SegmentMeta.from_x(meta.to_x()).init == tag
    assert "init" not in part_meta(part).to_x()  # a packager that has not sent it names none
    for bad in ("NOT-HEX", 7, "a" * 65):
        with pytest.raises(BadMessage):
            SegmentMeta.from_x({**part_meta(part, tag).to_x(), "init": bad})
