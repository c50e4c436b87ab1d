"""The gateway's accepted and unsettled messages, kept in the store, so that a gateway that
starts again (a new process after a crash, the pipeline started again on the same store)
delivers what it had accepted, as Threema's gateway keeps a message until it is delivered.

One small JSON file per message, `<base>/<recipient>/<message id>.json`, through `pyarrow.fs`
(a local folder, or s3://... beside the blobs), written to a temporary name and moved into place
so that a reader never sees half of one.

It is written behind, not on the send: a message is written once it has waited `after_s`
(a second by default) without being settled, and deleted once it is. A send never waits for
the store (an object store's PUT would cost more than an LL-HLS part's whole hop), and what
the edge takes within milliseconds (every part, every segment) is never written. What a
gateway loses when it dies is what it accepted in its last `after_s`; the packager's sends
are retried on the restarted gateway, so for the cluster's own messages that is nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, fields
from typing import Callable

import pyarrow.fs as pafs

from orbitcast.sealing.keys import is_identity
from orbitcast.store import open_store

from .queues import QueuedMessage, RecipientQueue

log = logging.getLogger(__name__)
# What identifies and carries a message; the queue's own bookkeeping starts again.
KEPT = ("message_id", "from_id", "to_id", "date", "nonce_hex", "box_hex", "nickname", "no_delivery_receipts",
        "attempts", "refusals", "last_failure", "order")


class QueueJournal:
    def __init__(self, filesystem: pafs.FileSystem, base_path: str) -> None:
        self.filesystem = filesystem
        self.base_path = base_path.rstrip("/")
        self.filesystem.create_dir(self.base_path, recursive=True)

    @classmethod
    def from_uri(cls, uri_or_path: str) -> "QueueJournal":
        return cls(*open_store(uri_or_path))

    def _path(self, to_id: str, message_id: str) -> str:
        return f"{self.base_path}/{to_id.replace('*', '_')}/{message_id}.json"

    def write(self, message: QueuedMessage) -> None:
        path = self._path(message.to_id, message.message_id)
        self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        body = json.dumps({k: v for k, v in asdict(message).items() if k in KEPT}).encode()
        tmp = path + ".tmp"
        with self.filesystem.open_output_stream(tmp) as out:
            out.write(body)
        self.filesystem.move(tmp, path)

    def delete(self, to_id: str, message_id: str) -> None:
        try:
            self.filesystem.delete_file(self._path(to_id, message_id))
        except FileNotFoundError:
            pass

    def load(self) -> list[QueuedMessage]:
        """Every message kept, per recipient in the order they were accepted. A file that cannot
        be read is left where it is and named in the log, not dropped in silence."""
        selector = pafs.FileSelector(self.base_path, recursive=True, allow_not_found=True)
        out: list[QueuedMessage] = []
        known = {f.name for f in fields(QueuedMessage)}
        for info in self.filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File or not info.path.endswith(".json"):
                continue
            try:
                with self.filesystem.open_input_stream(info.path) as stream:
                    record = json.loads(stream.read())
                message = QueuedMessage(**{k: v for k, v in record.items() if k in known})
                if not is_identity(message.to_id):
                    raise ValueError(f"bad recipient {message.to_id!r}")
            except (OSError, ValueError, TypeError) as err:
                log.warning("queue journal: %s not read (%s); left in place", info.path, err)
                continue
            out.append(message)
        return sorted(out, key=lambda m: (m.to_id, m.date, m.order))


class JournalKeeper:
    """Writes behind: every `every_s`, the messages that have waited `after_s` go to the
    journal, and those settled since leave it."""

    def __init__(self, journal: QueueJournal, queues: Callable[[], dict[str, RecipientQueue]],
                 after_s: float = 1.0, every_s: float = 0.25) -> None:
        self.journal = journal
        self.queues = queues
        self.after_s = after_s
        self.every_s = every_s
        self._kept: dict[str, set[str]] = {}  # recipient -> message ids in the journal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def restored(self, message: QueuedMessage) -> None:
        """`message` came from the journal and is queued again: it is there already."""
        self._kept.setdefault(message.to_id, set()).add(message.message_id)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="queue-journal", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.keep()
            except Exception:  # noqa: BLE001 - a store that fails now is tried again next round
                log.exception("queue journal: round failed")

    def keep(self) -> None:
        """One round (the thread's, and a last one at a clean stop: what was accepted in the
        last `after_s` is not written then either, as at a crash; the edge is still taking its
        messages when the gateway stops)."""
        for identity, queue in self.queues().items():
            kept = self._kept.setdefault(identity, set())
            waiting = queue.snapshot()
            now_ids = {m.message_id for m in waiting}
            for message_id in kept - now_ids:
                self.journal.delete(identity, message_id)
                kept.discard(message_id)
            for message in queue.older_than(self.after_s):
                if message.message_id not in kept:
                    self.journal.write(message)
                    kept.add(message.message_id)
