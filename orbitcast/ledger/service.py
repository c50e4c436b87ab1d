"""The ledger as the pipeline runs it: one `FeedLedger` per feed behind one signing key, stored
under the pipeline's store. The Ray actor (`actors/ledger.py`) only adds a place in the cluster
and a timer; everything it does is here, so it is testable without Ray.

Where things live (under the store's base, any `pyarrow.fs` filesystem):

    ledger/{feed}.log        the append-only log of each feed (see `store.py`)
    ledger/ed25519.key       the log's signing key (hex seed), unless a key path is configured

The key is next to the logs by default because the two must travel together: heads reloaded
from a log are only served if they verify under the key loaded beside it.
"""

from __future__ import annotations

import logging
import os
import posixpath
import threading
from collections.abc import Callable, Iterable
from typing import Any, Mapping

import pyarrow.fs as pafs
from nacl.signing import SigningKey

from ..store import open_store
from .http_shapes import route as http_route
from .keys import load_or_create_signing_key
from .leaf import LeafError, LeafFields
from .log import ConflictingLeaf, FeedLedger
from .store import LogStore
from .tree_head import SignedTreeHead

log = logging.getLogger(__name__)

KEY_NAME = "ed25519.key"


def load_or_create_key_on(fs: pafs.FileSystem, path: str) -> SigningKey:
    """`load_or_create_signing_key` for any `pyarrow.fs` filesystem.

    Local paths go through `keys.load_or_create_signing_key` (mode 0600, O_EXCL). Other
    filesystems (object stores) have no modes or exclusive create; there the store's own access
    control is what protects the key, and a configured local `ledger_key` is the better choice.
    """
    if isinstance(fs, pafs.LocalFileSystem):
        return load_or_create_signing_key(path)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.NotFound:
        with fs.open_input_stream(path) as f:
            seed = bytes.fromhex(f.read().decode("ascii").strip())
        if len(seed) != 32:
            raise ValueError(f"{path}: not a 32-byte Ed25519 seed")
        return SigningKey(seed)
    fs.create_dir(posixpath.dirname(path), recursive=True)
    key = SigningKey.generate()
    with fs.open_output_stream(path) as out:
        out.write((bytes(key).hex() + "\n").encode("ascii"))
    return key


class LedgerService:
    """Every feed's ledger, the key, and the HTTP answers; thread-safe through `FeedLedger`."""

    def __init__(
        self,
        store_uri: str | None,
        feeds: Iterable[str] = (),
        key_path: str | None = None,
        signing_key: SigningKey | None = None,
        idle_heads: Callable[[str], bool] = lambda feed: True,
    ) -> None:
        # `idle_heads(feed)`: whether the feed's head is signed again while it gets no leaves (a
        # live feed shows a live log); a finished recording's head stays the one over its leaves.
        self.idle_heads = idle_heads
        self._logs: LogStore | None = None
        base: str | None = None
        if store_uri is not None:
            fs, root = open_store(store_uri)
            base = posixpath.join(root, "ledger")
            self._logs = LogStore(fs, base)
        if signing_key is None:
            if key_path is not None:
                signing_key = load_or_create_signing_key(os.path.expanduser(key_path))
            elif self._logs is not None and base is not None:
                signing_key = load_or_create_key_on(self._logs.fs, posixpath.join(base, KEY_NAME))
            else:
                signing_key = SigningKey.generate()  # in memory only: tests and dry runs
        self.key = signing_key
        self.verify_key = signing_key.verify_key
        self.ledgers: dict[str, FeedLedger] = {}
        self.conflicts = 0
        # Appends (actor calls) and the timer sign from different threads: one signer at a
        # time, so a head stamped earlier is never signed after one stamped later.
        self._sign_lock = threading.Lock()
        self._open_lock = threading.Lock()  # one FeedLedger (one open log file) per feed
        for feed in feeds:
            self.ledger(feed)

    def ledger(self, feed: str) -> FeedLedger:
        led = self.ledgers.get(feed)
        if led is None:
            with self._open_lock:
                return self._open(feed)
        return led

    def _open(self, feed: str) -> FeedLedger:
        led = self.ledgers.get(feed)
        if led is None:
            # Opening reloads the stored log (cutting a torn tail): a restart resumes here.
            led = FeedLedger(feed, self.key, self._logs)
            if led.recovery is not None and led.recovery.cut_bytes:
                log.warning("ledger %s: reload cut %d bytes (%s)", feed,
                            led.recovery.cut_bytes, led.recovery.reason)
            self.ledgers[feed] = led
        return led

    def append(self, segments: Iterable[Any], now_ms: int) -> list[int | None]:
        """Enter each segment (a `Segment` or `LeafFields`), then sign a head over them.

        Signing right away (not only on the timer) means a segment is covered by a signed head
        before the packager hands it to the edge, so a viewer never meets a listed segment
        whose proof is "not yet certified". A segment whose (rendition, seq) already holds a
        different leaf gets None: an append-only log never replaces an entry (that segment
        will then fail verification, which is the truth about it).
        """
        out: list[int | None] = []
        touched: set[str] = set()
        for seg in segments:
            if not isinstance(seg, LeafFields) and getattr(seg, "data", None) is not None:
                seg.verified()  # hand-off check: packager -> ledger (a digest at every hop)
            fields = seg if isinstance(seg, LeafFields) else LeafFields.from_segment(seg)
            try:
                out.append(self.ledger(fields.feed).append(fields))
                touched.add(fields.feed)
            except ConflictingLeaf as e:
                self.conflicts += 1
                log.warning("ledger: %s", e)
                out.append(None)
        for feed in touched:
            self._sign(self.ledgers[feed], now_ms, max_age_ms=None)
        return out

    def sign_due(self, now_ms: int, max_age_ms: int) -> list[SignedTreeHead]:
        """Sign a head for every feed whose tree grew or whose head is `max_age_ms` old."""
        heads = []
        for name, led in list(self.ledgers.items()):
            if not self.idle_heads(name):
                continue  # signed with its appends only
            head = self._sign(led, now_ms, max_age_ms)
            if head is not None:
                heads.append(head)
        return heads

    def _sign(self, led: FeedLedger, now_ms: int, max_age_ms: int | None) -> SignedTreeHead | None:
        with self._sign_lock:
            return self._sign_locked(led, now_ms, max_age_ms)

    @staticmethod
    def _sign_locked(led: FeedLedger, now_ms: int, max_age_ms: int | None) -> SignedTreeHead | None:
        last = led.latest_head
        # Head timestamps never go backwards, even if the reference clock steps back (or a
        # reloaded log holds heads stamped by a clock that ran ahead): hold at the last one.
        if last is not None and now_ms < last.timestamp_ms:
            now_ms = last.timestamp_ms
        if max_age_ms is None:
            if last is not None and last.tree_size == led.size:
                return None
            return led.sign_head(now_ms)
        return led.sign_if_due(now_ms, max_age_ms)

    def route(self, path: str, query: Mapping[str, str] | None = None) -> tuple[int, dict, dict]:
        feed = _feed_in(path)
        if feed is not None and feed not in self.ledgers and self.stored(feed):
            self.ledger(feed)  # a log written by another process (a recording job): served too
        resp = http_route(self.ledgers, self.verify_key, path, query)
        return resp.status, resp.body, resp.headers

    def stored(self, feed: str) -> bool:
        """Whether the store holds a log for `feed` (False for a name a log cannot have)."""
        if self._logs is None:
            return False
        try:
            path = self._logs.path_for(feed)
        except LeafError:  # not a name any log has
            return False
        return self._logs.fs.get_file_info(path).type != pafs.FileType.NotFound

    def stats(self) -> dict[str, Any]:
        return {
            "conflicts": self.conflicts,
            "feeds": {
                name: {
                    "size": led.size,
                    "head": None if led.latest_head is None else led.latest_head.to_json(),
                }
                for name, led in self.ledgers.items()
            },
        }

    def close(self) -> None:
        for led in self.ledgers.values():
            led.close()


def _feed_in(path: str) -> str | None:
    """The feed a `/ledger/{feed}/...` path names (None: none, or the key's route)."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "ledger":
        parts = parts[1:]
    return parts[0] if parts and parts != ["pubkey"] else None
