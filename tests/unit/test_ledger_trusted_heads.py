"""Which heads and entries a verification trusts (`trusted_heads`): the pinned head, later heads
only when signed and consistent with it, entries only when they hash to a signed root."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from orbitcast.ledger import BadSignature, InconsistentHeads, LogShrank, SignedTreeHead, TreeHeadError
from orbitcast.ledger.trusted_heads import HeadBook, verify_entries

from tests.unit.ledger_fixtures import KEY, Edge


def book_at(edge: Edge, size: int) -> tuple[HeadBook, list[tuple[int, int]]]:
    """A book pinned to the edge's head of `size`, recording the consistency proofs it asks for."""
    asked: list[tuple[int, int]] = []

    def consistency(first: int, second: int) -> list[bytes]:
        asked.append((first, second))
        return edge.ledger.consistency(first, second)

    pinned = edge.ledger.head_at(size)
    assert pinned is not None
    return HeadBook(pinned, KEY.verify_key, consistency), asked


def test_a_later_head_consistent_with_the_pin_is_trusted_after_one_proof() -> None:
    edge = Edge(n=6)
    book, asked = book_at(edge, 9)
    later = edge.ledger.latest_head
    assert later is not None and later.tree_size == 18
    book.accept(later)
    book.accept(later)
    assert asked == [(9, 18)]  # proven once, remembered after


def test_a_pinned_head_under_another_key_is_refused_at_once() -> None:
    edge = Edge()
    with pytest.raises(BadSignature):
        HeadBook(edge.ledger.latest_head, SigningKey.generate().verify_key, edge.ledger.consistency)


def test_a_head_of_another_feed_is_refused() -> None:
    edge = Edge()
    book, _ = book_at(edge, 9)
    other = SignedTreeHead.sign(KEY, "dock", 18, 99_999, edge.ledger.root(18))
    with pytest.raises(TreeHeadError, match="feed dock"):
        book.accept(other)


def test_a_later_smaller_head_is_a_shrinking_log() -> None:
    edge = Edge()
    book, _ = book_at(edge, 18)
    shrunk = SignedTreeHead.sign(KEY, "iss", 9, 99_999, edge.ledger.root(9))
    with pytest.raises(LogShrank):
        book.accept(shrunk)


def test_a_later_head_with_another_root_is_inconsistent() -> None:
    edge = Edge()
    book, _ = book_at(edge, 9)
    forked = SignedTreeHead.sign(KEY, "iss", 18, 99_999, bytes(32))
    with pytest.raises(InconsistentHeads):
        book.accept(forked)


def test_a_consistency_proof_that_cannot_be_fetched_is_the_reason() -> None:
    edge = Edge()
    pinned = edge.ledger.head_at(9)

    def consistency(first: int, second: int) -> list[bytes]:
        raise IOError("HTTP 503: ledger unreachable")

    book = HeadBook(pinned, KEY.verify_key, consistency)
    with pytest.raises(TreeHeadError, match="no consistency proof 9 -> 18: HTTP 503"):
        book.accept(edge.ledger.latest_head)


def test_entries_are_trusted_only_all_of_them_and_unchanged() -> None:
    edge = Edge()
    entries, head = edge.entries_and_head()
    leaves = verify_entries(entries, head, KEY.verify_key)
    assert [(lf.rendition, lf.seq) for lf in leaves[:3]] == [("360p", 0), ("720p", 0), ("1080p", 0)]
    with pytest.raises(TreeHeadError, match="17 entries for a head of size 18"):
        verify_entries(entries[:-1], head, KEY.verify_key)
    swapped = [entries[1], entries[0], *entries[2:]]
    with pytest.raises(TreeHeadError, match="signed root"):
        verify_entries(swapped, head, KEY.verify_key)
