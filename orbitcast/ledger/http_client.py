"""Reading a ledger's HTTP routes (see `http_shapes`) for verification, with the transport
injected: `fetch(url) -> bytes` must raise on any non-2xx answer; the exception text becomes
the reason a verification shows.

The ledger of a server lives at `{origin}/ledger` (`ledger_root_for`): its key at
`/ledger/pubkey`, each feed's log under `/ledger/{feed}` (`ledger_base_for`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from nacl.signing import VerifyKey

from .tree_head import SignedTreeHead

Fetch = Callable[[str], bytes]


def ledger_root_for(url: str) -> str:
    """`http://HOST:PORT/ledger` of the server that answers `url`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/ledger"


def ledger_base_for(url: str, feed: str) -> str:
    """`http://HOST:PORT/ledger/{feed}` of the server that answers `url`."""
    return f"{ledger_root_for(url)}/{feed}"


def fetch_json(fetch: Fetch, url: str) -> Any:
    return json.loads(fetch(url).decode("utf-8"))


def fetch_verify_key(fetch: Fetch, ledger_root: str) -> VerifyKey:
    """The key the server publishes at `{ledger_root}/pubkey`; whether to trust it is the
    caller's decision (`known_keys` pins it on first use)."""
    obj = fetch_json(fetch, f"{ledger_root.rstrip('/')}/pubkey")
    return VerifyKey(bytes.fromhex(obj["public_key"]))


def fetch_head(fetch: Fetch, ledger_base: str) -> SignedTreeHead:
    """The feed's latest signed tree head (not yet checked against any key)."""
    return SignedTreeHead.from_json(fetch_json(fetch, f"{ledger_base}/sth"))


def consistency_fetcher(fetch: Fetch, ledger_base: str) -> Callable[[int, int], list[bytes]]:
    """`get(first, second)`: the consistency proof between two tree sizes of the feed's log."""

    def get(first: int, second: int) -> list[bytes]:
        obj = fetch_json(fetch, f"{ledger_base}/consistency?first={first}&second={second}")
        return [bytes.fromhex(h) for h in obj["proof"]]

    return get


def fetch_entries(fetch: Fetch, ledger_base: str, tree_size: int, page: int = 1000) -> list[bytes]:
    """Every entry [0, tree_size) from `{ledger_base}/entries`, page by page."""
    entries: list[bytes] = []
    while len(entries) < tree_size:
        start = len(entries)
        obj = fetch_json(fetch, f"{ledger_base}/entries?start={start}&end={min(tree_size, start + page)}")
        got = [bytes.fromhex(e) for e in obj["entries"]]
        if obj.get("start") != start or not got:
            raise ValueError(f"entries page at {start} is empty or misplaced")
        entries.extend(got)
    return entries[:tree_size]
