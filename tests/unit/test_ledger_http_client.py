"""Reading a ledger's HTTP routes (`http_client`) with the transport injected."""

from __future__ import annotations

import json

import pytest

from orbitcast.ledger.http_client import (
    consistency_fetcher,
    fetch_entries,
    fetch_head,
    fetch_verify_key,
    ledger_base_for,
    ledger_root_for,
)

from tests.unit.ledger_fixtures import BASE, KEY, Edge


def test_the_ledger_is_found_on_the_server_of_the_playlist() -> None:
    url = "http://edge.test:8000/live/iss/720p/index.m3u8?_HLS_msn=4"
    assert ledger_root_for(url) == "http://edge.test:8000/ledger"
    assert ledger_base_for(url, "iss") == "http://edge.test:8000/ledger/iss"


def test_the_key_and_head_are_what_the_server_publishes() -> None:
    edge = Edge()
    assert bytes(fetch_verify_key(edge.fetch, f"{BASE}/ledger")) == bytes(KEY.verify_key)
    assert fetch_head(edge.fetch, f"{BASE}/ledger/iss") == edge.ledger.latest_head


def test_entries_come_page_by_page_in_order() -> None:
    edge = Edge()
    entries = fetch_entries(edge.fetch, f"{BASE}/ledger/iss", 18, page=5)
    assert entries == edge.ledger.leaves(0, 18)
    pages = [u.split("?", 1)[1] for u in edge.requests if "/entries?" in u]
    assert pages == ["start=0&end=5", "start=5&end=10", "start=10&end=15", "start=15&end=18"]


def test_a_misplaced_page_of_entries_is_refused() -> None:
    edge = Edge()

    def fetch(url: str) -> bytes:
        obj = json.loads(edge.fetch(url))
        obj["start"] = 0  # a server (or cache) answering every page with the first one
        return json.dumps(obj).encode()

    with pytest.raises(ValueError, match="entries page at 5"):
        fetch_entries(fetch, f"{BASE}/ledger/iss", 18, page=5)


def test_consistency_proofs_are_read_as_hashes() -> None:
    edge = Edge()
    get = consistency_fetcher(edge.fetch, f"{BASE}/ledger/iss")
    assert get(9, 18) == edge.ledger.consistency(9, 18)
