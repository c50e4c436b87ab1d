"""The per-feed ledger and its pyarrow.fs log: appends, proofs, restart, crash safety."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from nacl.signing import SigningKey

from orbitcast.ledger import (
    ConflictingLeaf,
    FeedLedger,
    LeafFields,
    LogStore,
    NotYetCertified,
    StoreError,
    UnknownLeaf,
    decode_leaf,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from orbitcast.ledger.merkle import MerkleTree
from orbitcast.ledger.store import MAGIC, encode_record, RecordKind
from orbitcast.segment import Segment

KEY = SigningKey(hashlib.sha256(b"store test").digest())
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def seg(seq: int, rendition: str = "720p") -> Segment:
    return Segment("iss", rendition, seq, 2.0 * seq, 2.0, T0 + timedelta(seconds=2 * seq),
                   f"{rendition}-{seq}".encode() * 7)


def fill(lg: FeedLedger, n: int) -> None:
    for seq in range(n):
        for r in ("360p", "720p"):
            lg.append(seg(seq, r))


def test_append_index_and_proof(tmp_path: Path) -> None:
    lg = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    fill(lg, 5)
    assert lg.size == 10 and lg.index_of("720p", 3) == 7 and lg.index_of("720p", 9) is None
    with pytest.raises(NotYetCertified):
        lg.proof("720p", 3)
    head = lg.sign_head(1_000)
    p = lg.proof("720p", 3)
    assert p["leaf_index"] == 7 and p["tree_head"] == head.to_json()
    leaf = bytes.fromhex(p["leaf"])
    assert decode_leaf(leaf).seq == 3 and p["leaf_fields"]["rendition"] == "720p"
    verify_inclusion(7, 10, leaf_hash(leaf), [bytes.fromhex(h) for h in p["audit_path"]], head.root_hash)
    with pytest.raises(UnknownLeaf):
        lg.proof("720p", 99)


def test_proofs_against_an_older_head(tmp_path: Path) -> None:
    lg = FeedLedger("iss", KEY)
    fill(lg, 3)
    old = lg.sign_head(1)
    fill_more = [seg(s, "720p") for s in range(3, 9)]
    for s in fill_more:
        lg.append(s)
    new = lg.sign_head(2)
    p = lg.proof("360p", 1, tree_size=old.tree_size)
    assert p["tree_head"]["tree_size"] == 6
    verify_inclusion(p["leaf_index"], 6, leaf_hash(bytes.fromhex(p["leaf"])),
                     [bytes.fromhex(h) for h in p["audit_path"]], old.root_hash)
    verify_consistency(6, new.tree_size, old.root_hash, new.root_hash, lg.consistency(6, new.tree_size))
    with pytest.raises(NotYetCertified):
        lg.proof("720p", 5, tree_size=old.tree_size)
    with pytest.raises(UnknownLeaf):
        lg.proof("720p", 1, tree_size=7)  # no head was signed at 7


def test_append_is_idempotent_but_never_replaces() -> None:
    lg = FeedLedger("iss", KEY)
    s = seg(1)
    assert lg.append(s) == lg.append(s) == 0
    tampered = Segment(s.feed, s.rendition, s.seq, s.start, s.duration, s.program_date_time, b"other")
    with pytest.raises(ConflictingLeaf):
        lg.append(tampered)
    with pytest.raises(ValueError):
        lg.append(Segment("mars", "720p", 1, 0, 2, T0, b"x"))
    assert lg.size == 1


def test_restart_reloads_leaves_heads_and_index(tmp_path: Path) -> None:
    store = LogStore(base=str(tmp_path))
    lg = FeedLedger("iss", KEY, store)
    fill(lg, 20)
    h1 = lg.sign_head(100)
    lg.append(seg(20))
    h2 = lg.sign_head(200)
    lg.close()
    again = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    assert again.size == 41 and again.root() == h2.root_hash
    assert again.latest_head == h2 and again.head_at(40) == h1
    assert again.index_of("720p", 20) == 40
    assert again.recovery is not None and again.recovery.cut_bytes == 0
    again.append(seg(21))  # appends continue after the reload
    again.close()
    third = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    assert third.size == 42 and third.root(41) == h2.root_hash


def test_a_restart_checks_the_newest_head_only_and_an_older_one_when_asked(tmp_path: Path, monkeypatch) -> None:
    from orbitcast.ledger.tree_head import SignedTreeHead

    lg = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    heads = {}
    for seq in range(30):  # a live log: a head per segment
        lg.append(seg(seq))
        heads[lg.size] = lg.sign_head(1_000 * seq)
    # a head of size 10 that this key never signed, later in the log than the true one
    forged = SignedTreeHead.sign(SigningKey.generate(), "iss", 10, 9_500, lg.root(10))
    lg._file.append(RecordKind.TREE_HEAD, forged.encode())
    # and one of size 20 cut short (no root, no signature), unreadable when its size is asked for
    lg._file.append(RecordKind.TREE_HEAD, forged.encode()[:-96].replace((10).to_bytes(8, "big"), (20).to_bytes(8, "big"), 1))
    lg._file.append(RecordKind.TREE_HEAD, b"not a head at all")
    lg.close()
    checked: list[int] = []
    verify = SignedTreeHead.verify
    monkeypatch.setattr(SignedTreeHead, "verify", lambda self, key: (checked.append(self.tree_size), verify(self, key))[1])
    again = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    assert again.latest_head == heads[30] and checked == [30]  # one signature at the restart, not 31
    assert again.head_at(20) == heads[20] and checked == [30, 20]
    # the forged head is refused when its size is first asked for; the true one of that size stands
    assert again.head_at(10) == heads[10] and again.proof("720p", 3, tree_size=10)["tree_head"] == heads[10].to_json()
    assert again.head_at(31) is None and again.head_at(5) == heads[5]


def _log_file(tmp_path: Path) -> Path:
    return tmp_path / "iss.log"


@pytest.mark.parametrize("cut", [1, 5, 8, 9, 20, 40])
def test_a_log_cut_mid_record_reloads_to_its_last_whole_record(tmp_path: Path, cut: int) -> None:
    lg = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    fill(lg, 4)  # 8 leaves
    root7 = lg.root(7)
    lg.close()
    path = _log_file(tmp_path)
    data = path.read_bytes()
    last_len = len(encode_record(RecordKind.LEAF, lg.leaf(7)))
    assert cut < last_len
    path.write_bytes(data[: len(data) - last_len + cut])  # the crash: a prefix of the last record
    again = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    assert again.size == 7 and again.root() == root7
    assert again.recovery.cut_bytes == cut and again.recovery.reason
    # The torn bytes are gone from the log (kept aside), and appends land after record 7.
    assert path.stat().st_size == len(data) - last_len
    assert any(p.name.startswith("iss.log.torn-") for p in tmp_path.iterdir())
    assert again.append(seg(3, "720p")) == 7
    again.close()
    assert FeedLedger("iss", KEY, LogStore(base=str(tmp_path))).root() == lg.root()


@pytest.mark.parametrize("garbage", [b"\x00", b"\xff" * 3, os.urandom(64), b"\x00\x00\x00\x10" + b"x" * 30])
def test_garbage_after_the_last_record_is_cut(tmp_path: Path, garbage: bytes) -> None:
    lg = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    fill(lg, 3)
    head = lg.sign_head(5)
    lg.close()
    with open(_log_file(tmp_path), "ab") as f:
        f.write(garbage)
    again = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    assert again.size == 6 and again.latest_head == head and again.recovery.cut_bytes == len(garbage)


def test_a_flipped_byte_cuts_from_that_record_on(tmp_path: Path) -> None:
    lg = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    fill(lg, 3)
    lg.close()
    path = _log_file(tmp_path)
    data = bytearray(path.read_bytes())
    rec = len(encode_record(RecordKind.LEAF, lg.leaf(0)))
    data[len(MAGIC) + rec + 12] ^= 1  # inside the second record's payload
    path.write_bytes(bytes(data))
    again = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    assert again.size == 1 and again.root() == MerkleTree.from_leaves([lg.leaf(0)]).root()


def test_torn_file_header_and_foreign_files(tmp_path: Path) -> None:
    _log_file(tmp_path).write_bytes(MAGIC[:3])
    lg = FeedLedger("iss", KEY, LogStore(base=str(tmp_path)))
    assert lg.size == 0
    lg.append(seg(0))
    lg.close()
    assert FeedLedger("iss", KEY, LogStore(base=str(tmp_path))).size == 1
    (tmp_path / "mars.log").write_bytes(b"not a ledger at all")
    with pytest.raises(StoreError):
        FeedLedger("mars", KEY, LogStore(base=str(tmp_path)))


def test_store_from_uri_and_a_key_rotation(tmp_path: Path) -> None:
    store = LogStore.from_uri(f"file://{tmp_path}/nested/ledger")
    assert isinstance(store.fs, pafs.LocalFileSystem)
    lg = FeedLedger("iss", KEY, store)
    fill(lg, 2)
    lg.sign_head(1)
    lg.close()
    # Reopened under another key: the leaves are kept; heads it cannot verify are not served.
    other = FeedLedger("iss", SigningKey.generate(), LogStore.from_uri(f"file://{tmp_path}/nested/ledger"))
    assert other.size == 4 and other.latest_head is None


def test_feed_names_cannot_leave_the_store(tmp_path: Path) -> None:
    store = LogStore(base=str(tmp_path))
    for bad in ("../x", "a/b", "", "x" * 65):
        with pytest.raises(ValueError):
            store.path_for(bad)


def test_leaf_fields_are_accepted_directly() -> None:
    lg = FeedLedger("iss", KEY)
    fields = LeafFields.of("iss", "720p", 9, T0, 10, "ab" * 32)
    assert lg.append(fields) == 0 and decode_leaf(lg.leaf(0)) == fields


def test_sign_if_due_covers_growth_and_age() -> None:
    lg = FeedLedger("iss", KEY)
    assert lg.sign_if_due(1_000, 2_000) is not None  # first head
    assert lg.sign_if_due(1_500, 2_000) is None  # nothing new, still fresh
    lg.append(seg(0))
    grown = lg.sign_if_due(1_600, 2_000)
    assert grown is not None and grown.tree_size == 1
    assert lg.sign_if_due(3_599, 2_000) is None
    aged = lg.sign_if_due(3_600, 2_000)
    assert aged is not None and aged.tree_size == 1 and lg.latest_head == aged
