"""Leaf encoding and signed tree heads: bad signature, a shrinking log, inconsistent heads."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from nacl.signing import SigningKey

from orbitcast.ledger import (
    BadSignature,
    FeedLedger,
    InconsistentHeads,
    LeafError,
    LeafFields,
    LogShrank,
    MalformedHead,
    SignedTreeHead,
    check_consistent,
    decode_leaf,
)
from orbitcast.ledger.leaf import format_pdt
from orbitcast.segment import Segment

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def seg(seq: int, rendition: str = "720p", feed: str = "iss", data: bytes | None = None) -> Segment:
    payload = data if data is not None else f"{feed}/{rendition}/{seq}".encode() * 10
    return Segment(feed, rendition, seq, seq * 2.0, 2.0, T0 + timedelta(seconds=2 * seq), payload)


# -- leaves ------------------------------------------------------------------------------------


def test_leaf_round_trip_binds_every_field() -> None:
    s = seg(41)
    fields = LeafFields.from_segment(s)
    assert fields.program_date_time == "2025-03-01T12:01:22.123Z"
    assert fields.sha256.hex() == s.digest and fields.size == s.size
    data = fields.encode()
    assert decode_leaf(data) == fields
    assert LeafFields.from_json(fields.to_json()) == fields
    # Changing any one field changes the encoding.
    variants = [
        LeafFields.of("iss2", "720p", 41, fields.program_date_time, s.size, s.digest),
        LeafFields.of("iss", "360p", 41, fields.program_date_time, s.size, s.digest),
        LeafFields.of("iss", "720p", 42, fields.program_date_time, s.size, s.digest),
        LeafFields.of("iss", "720p", 41, "2025-03-01T12:01:22.124Z", s.size, s.digest),
        LeafFields.of("iss", "720p", 41, fields.program_date_time, s.size + 1, s.digest),
        LeafFields.of("iss", "720p", 41, fields.program_date_time, s.size, "00" * 32),
    ]
    assert len({v.encode() for v in variants} | {data}) == len(variants) + 1


def test_leaf_decode_is_strict() -> None:
    data = LeafFields.from_segment(seg(1)).encode()
    for bad in (
        data[:-1],
        data + b"\x00",
        b"\x02" + data[1:],  # unknown version
        b"",
        data.replace(b"2025-03-01T", b"2025-03-01 "),  # not canonical time
        data.replace(b"iss", b"i/s"),  # bad name
    ):
        with pytest.raises(LeafError):
            decode_leaf(bad)


def test_pdt_needs_a_timezone_and_is_utc() -> None:
    with pytest.raises(LeafError):
        format_pdt(datetime(2025, 1, 1))
    plus2 = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_pdt(plus2) == "2025-01-01T12:00:00.000Z"


# -- signed tree heads -------------------------------------------------------------------------

KEY = SigningKey(hashlib.sha256(b"orbitcast test key").digest())
OTHER = SigningKey(hashlib.sha256(b"someone else").digest())


def ledger_with(n: int, key: SigningKey = KEY, offset: int = 0) -> FeedLedger:
    lg = FeedLedger("iss", key)
    for i in range(n):
        lg.append(seg(i + offset))
    return lg


def test_head_json_round_trip_and_verify() -> None:
    lg = ledger_with(5)
    head = lg.sign_head(1_700_000_000_000)
    assert head.tree_size == 5 and head.root_hash == lg.root()
    again = SignedTreeHead.from_json(head.to_json())
    assert again == head
    again.verify(KEY.verify_key)
    assert SignedTreeHead.decode(head.encode()) == head


def test_bad_signature_is_reported_as_such() -> None:
    head = ledger_with(3).sign_head(1000)
    with pytest.raises(BadSignature):
        head.verify(OTHER.verify_key)
    js = head.to_json()
    for field, value in (
        ("tree_size", 4),
        ("timestamp", 1001),
        ("root_hash", "00" * 32),
        ("feed", "iss2"),
        ("signature", ("ff" if js["signature"][:2] != "ff" else "00") + js["signature"][2:]),
    ):
        forged = SignedTreeHead.from_json({**js, field: value})
        with pytest.raises(BadSignature):
            forged.verify(KEY.verify_key)


def test_malformed_head_json() -> None:
    js = ledger_with(1).sign_head(5).to_json()
    for bad in ({**js, "root_hash": "zz"}, {**js, "signature": "00"}, {k: v for k, v in js.items() if k != "feed"}):
        with pytest.raises(MalformedHead):
            SignedTreeHead.from_json(bad)


def test_consistent_heads_pass() -> None:
    lg = ledger_with(3)
    h3 = lg.sign_head(1000)
    for i in range(3, 8):
        lg.append(seg(i))
    h8 = lg.sign_head(2000)
    check_consistent(h3, h8, lg.consistency(3, 8), KEY.verify_key)


def test_a_log_that_shrinks_is_reported() -> None:
    big = ledger_with(8)
    h8 = big.sign_head(1000)
    small = ledger_with(5)
    h5_later = small.sign_head(2000)  # same key, later, fewer entries
    with pytest.raises(LogShrank):
        check_consistent(h8, h5_later, big.consistency(5, 8), KEY.verify_key)


def test_inconsistent_heads_are_reported() -> None:
    honest = ledger_with(4)
    h4 = honest.sign_head(1000)
    # A rewritten log: same key, different history, bigger and later.
    forked = ledger_with(6, offset=100)
    h6 = forked.sign_head(2000)
    with pytest.raises(InconsistentHeads):
        check_consistent(h4, h6, forked.consistency(4, 6), KEY.verify_key)
    # Same size, different root: a fork.
    h4b = ledger_with(4, offset=50).sign_head(1500)
    with pytest.raises(InconsistentHeads):
        check_consistent(h4, h4b, [], KEY.verify_key)


def test_consistency_checks_signatures_first() -> None:
    lg = ledger_with(2)
    h2 = lg.sign_head(1)
    lg.append(seg(2))
    other = FeedLedger("iss", OTHER)
    for i in range(3):
        other.append(seg(i))
    h3_other = other.sign_head(2)
    with pytest.raises(BadSignature):
        check_consistent(h2, h3_other, lg.consistency(2, 3), KEY.verify_key)


def test_timestamps_do_not_go_backwards() -> None:
    lg = ledger_with(1)
    lg.sign_head(2000)
    with pytest.raises(ValueError):
        lg.sign_head(1999)
