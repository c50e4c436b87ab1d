"""The gateway's state and rules, free of any HTTP framework.

Every public method takes already-parsed request values and either returns the 200 body
value or raises a `GatewayRefusal` carrying Threema's status code. `http.py` only maps
requests to these calls. Thread-safe: Serve runs handlers on several threads and the
callback workers run on their own.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from collections import OrderedDict
from typing import Callable, NoReturn

from orbitcast.sealing.hexstr import is_hex, is_lower_hex
from orbitcast.sealing.keys import is_identity

from .blobstore import BlobStore, MemoryBlobs
from .config import GatewayConfig, IdentityConfig
from .dead_letters import DeadLetter, DeadLetters
from .delivery import Poster, RecipientWorker, RequestsPoster, RetryPolicy
from .errors import BadRequest, GatewayRefusal, NoCredits, NotFound, TooLarge, Unauthorized, Unavailable
from .journal import JournalKeeper, QueueJournal
from .lookup import email_hash, phone_hash
from .queues import QueuedMessage, RecipientQueue

log = logging.getLogger(__name__)
STATUS_HISTORY = 100_000  # message statuses kept for /status-style queries


@dataclass
class MessageStatus:
    message_id: str
    from_id: str
    to_id: str
    state: str = "queued"  # queued -> delivered, or queued -> dead_letter
    attempts: int = 0
    delivered_at: float | None = None
    reason: str | None = None  # why it was dead-lettered


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        blob_store: BlobStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.blobs = blob_store or BlobStore.from_uri(config.blob_store)
        self._transient = MemoryBlobs(config.transient_blob_bytes)
        self._clock = clock
        self._lock = threading.RLock()
        self._accounts: dict[str, IdentityConfig] = {}
        self._credits: dict[str, int] = {}
        self._queues: dict[str, RecipientQueue] = {}
        self._status: OrderedDict[str, MessageStatus] = OrderedDict()  # bounded, newest last
        self._workers: dict[str, RecipientWorker] = {}
        self._poster: Poster | None = None
        self.dead_letters = DeadLetters(config.dead_letters_kept, config.alarm_window_s)
        #: refusals by code, accepted sends, deliveries, callback failures
        self.counters: Counter[str] = Counter()
        for account in config.identities:
            self.add_identity(account)
        self.journal: JournalKeeper | None = None
        if config.queue_journal:
            self.journal = JournalKeeper(QueueJournal.from_uri(config.queue_journal), self._all_queues,
                                         config.journal_after_s)
            self._restore(self.journal)
            self.journal.start()

    def _all_queues(self) -> dict[str, RecipientQueue]:
        with self._lock:
            return dict(self._queues)

    def _restore(self, keeper: JournalKeeper) -> None:
        """Queue again what an earlier gateway on this store accepted and did not settle, each
        as old as it is (`max_age_s` counts from its acceptance)."""
        restored = 0
        for message in keeper.journal.load():
            with self._lock:
                queue = self._queues.get(message.to_id)
            if queue is None:
                log.warning("queue journal: %s is for %s, not an identity here; left in the journal",
                            message.message_id, message.to_id)
                continue
            try:
                queue.put(message, age=max(0.0, self._clock() - message.date))
            except Unavailable:
                log.warning("queue journal: %s's queue is full; %s left in the journal", message.to_id, message.message_id)
                continue
            keeper.restored(message)
            with self._lock:
                self._status[message.message_id] = MessageStatus(message.message_id, message.from_id, message.to_id,
                                                                 attempts=message.attempts)
            restored += 1
        self.counters["restored"] = restored
        if restored:
            log.info("queue journal: %d undelivered messages queued again", restored)

    def close(self) -> None:
        """Stop delivering, and leave the journal as the queues are now."""
        self.stop_delivery()
        if self.journal is not None:
            self.journal.stop()
            self.journal.keep()

    # -- accounts ------------------------------------------------------------------------

    def add_identity(self, account: IdentityConfig) -> None:
        """Register (or replace) an account; starts its callback worker if delivery runs."""
        with self._lock:
            self._accounts[account.identity] = account
            self._credits.setdefault(account.identity, account.credits)
            self._queues.setdefault(account.identity, RecipientQueue(account.identity, self.config.max_queue))
            if self._poster is not None:
                self._start_worker(account.identity)

    def identities(self) -> list[str]:
        with self._lock:
            return sorted(self._accounts)

    def authenticate(self, identity: str | None, secret: str | None) -> str:
        """401 for an unknown API identity or a wrong secret, without saying which."""
        with self._lock:
            account = self._accounts.get(identity or "")
        expected = account.secret if account else "x" * 16  # compare anyway: no timing oracle
        if not hmac.compare_digest(expected.encode(), (secret or "").encode("utf-8", "replace")) or account is None:
            return self._refuse(Unauthorized("wrong identity or secret"))
        return account.identity

    def _account(self, identity: str) -> IdentityConfig:
        with self._lock:
            account = self._accounts.get(identity)
        if account is None:
            self._refuse(NotFound("unknown identity"))
        return account

    def _refuse(self, refusal: GatewayRefusal) -> NoReturn:
        self.counters[f"refused_{refusal.code}"] += 1
        raise refusal

    # -- lookups ------------------------------------------------------------------------

    def public_key_hex(self, target: str) -> str:
        return self._account(target).public_key

    def capabilities(self, target: str) -> list[str]:
        return list(self._account(target).capabilities)

    def lookup(self, kind: str, value: str) -> str:
        with self._lock:
            accounts = list(self._accounts.values())
        if kind in ("phone_hash", "email_hash"):
            if not is_lower_hex(value, 64):
                self._refuse(BadRequest("hash must be 64 lowercase hex"))
            digest = value
        elif kind == "phone":
            if not value.isdigit():
                self._refuse(BadRequest("phone must be digits"))
            digest = phone_hash(value)
        elif kind == "email":
            if "@" not in value:
                self._refuse(BadRequest("not an e-mail address"))
            digest = email_hash(value)
        else:
            self._refuse(BadRequest("unknown lookup"))
        hasher = phone_hash if kind.startswith("phone") else email_hash
        attribute = "phone" if kind.startswith("phone") else "email"
        for account in accounts:
            known = getattr(account, attribute)
            if known and hasher(known) == digest:
                return account.identity
        return self._refuse(NotFound("no identity for that lookup"))

    def credits(self, identity: str) -> int:
        with self._lock:
            return self._credits.get(identity, 0)

    def set_credits(self, identity: str, credits: int) -> None:
        with self._lock:
            self._account(identity)
            self._credits[identity] = credits

    # -- sending ------------------------------------------------------------------------

    def send_simple(self, sender: str) -> str:
        # Simple mode has the gateway encrypt with keys it holds for the recipient; this
        # gateway never holds user keys, so only end-to-end mode is offered.
        return self._refuse(BadRequest("simple mode not supported by this gateway; use send_e2e"))

    def send_e2e(
        self,
        sender: str,
        to: str | None,
        nonce_hex: str | None,
        box_hex: str | None,
        *,
        no_delivery_receipts: bool = False,
    ) -> str:
        if to is None or not is_identity(to):
            self._refuse(BadRequest("bad recipient"))
        account = self._account(to)
        if nonce_hex is None or not is_hex(nonce_hex, 48):
            self._refuse(BadRequest("nonce must be 48 hex"))
        if box_hex is None or not box_hex or len(box_hex) % 2 or not is_hex(box_hex):
            self._refuse(BadRequest("box must be hex"))
        if len(box_hex) // 2 > self.config.max_box_bytes:
            self._refuse(TooLarge("box over the size limit"))
        with self._lock:
            if self._credits.get(sender, 0) <= 0:
                self._refuse(NoCredits("no credits"))
            message = QueuedMessage(
                message_id=secrets.token_hex(8),
                from_id=sender,
                to_id=account.identity,
                date=int(self._clock()),
                nonce_hex=nonce_hex.lower(),
                box_hex=box_hex.lower(),
                nickname=self._accounts[sender].nickname if sender in self._accounts else None,
                no_delivery_receipts=no_delivery_receipts,
            )
            try:
                self._queues[account.identity].put(message)
            except Unavailable as refusal:
                # The sender hears 503; the recipient's record says so too, so a full queue
                # is never a loss nobody sees.
                if self.dead_letters.refused(account.identity, "queue_full", self._clock()):
                    log.warning("queue of %s full (%d): refusing with 503 (alarm raised)",
                                account.identity, self.config.max_queue)
                self._refuse(refusal)
            self._credits[sender] -= 1  # charged only once the message is really queued
            self._status[message.message_id] = MessageStatus(message.message_id, sender, account.identity)
            while len(self._status) > STATUS_HISTORY:
                self._status.popitem(last=False)
            self.counters["sent"] += 1
        return message.message_id

    def message_status(self, message_id: str) -> MessageStatus:
        with self._lock:
            status = self._status.get(message_id)
        if status is None:
            self._refuse(NotFound("unknown message id"))
        return status

    def pending(self, identity: str) -> list[QueuedMessage]:
        """Undelivered messages for `identity`, oldest first (for recipients without a URL)."""
        return self._queue(identity).snapshot()

    def acknowledge(self, identity: str, message_id: str) -> bool:
        """Pull-mode delivery: the recipient took `message_id` (any pending one) itself."""
        message = self._queue(identity).ack(message_id)
        if message is None:
            return False
        self._delivered(message)
        return True

    def _queue(self, identity: str) -> RecipientQueue:
        with self._lock:
            queue = self._queues.get(identity)
        if queue is None:
            self._refuse(NotFound("unknown identity"))
        return queue

    # -- blobs --------------------------------------------------------------------------

    def upload_blob(self, sender: str, data: bytes, *, transient: bool = False) -> str:
        """Store a blob; `transient` ones (LL-HLS parts, read once by the edge within a second)
        stay in memory only, evicted oldest first, instead of filling the archive."""
        if not data:
            self._refuse(BadRequest("empty blob"))
        if len(data) > self.config.max_blob_bytes:
            self._refuse(TooLarge("blob over the size limit"))
        if self.credits(sender) <= 0:
            self._refuse(NoCredits("no credits"))
        blob_id = self._transient.put(data) if transient else self.blobs.put(data)
        self.counters["blobs_uploaded"] += 1
        return blob_id

    def download_blob(self, blob_id: str) -> bytes:
        data = self._transient.get(blob_id)
        if data is not None:
            return data
        try:
            return self.blobs.get(blob_id)
        except GatewayRefusal as refusal:
            return self._refuse(refusal)

    # -- callback delivery --------------------------------------------------------------

    def start_delivery(self, poster: Poster | None = None) -> None:
        """Start one worker per account that has a callback URL (idempotent)."""
        with self._lock:
            self._poster = poster or self._poster or RequestsPoster(self.config.callback_timeout_s)
            for identity in self._accounts:
                self._start_worker(identity)

    def stop_delivery(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
            self._poster = None
        for worker in workers:
            worker.stop()

    def _start_worker(self, identity: str) -> None:
        account = self._accounts[identity]
        current = self._workers.get(identity)
        if current is not None and current.url == account.callback_url:
            return
        if current is not None:
            current.stop()
            del self._workers[identity]
        if not account.callback_url or self._poster is None:
            return
        c = self.config
        queue = self._queues[identity]
        queue.reclaim()
        worker = RecipientWorker(
            queue,
            account.callback_url,
            account.secret,  # the callback MAC is keyed with the RECIPIENT's API secret
            self._poster,
            RetryPolicy(c.retry_initial_s, c.retry_factor, c.retry_max_s, c.max_attempts, c.max_age_s),
            self._delivered,
            self._delivery_failed,
            self._dead_lettered,
        )
        self._workers[identity] = worker
        worker.start()

    def _delivered(self, message: QueuedMessage) -> None:
        with self._lock:
            status = self._status.get(message.message_id)
            if status is not None:
                status.state = "delivered"
                status.attempts = message.attempts
                status.delivered_at = self._clock()
            self.counters["delivered"] += 1

    def _delivery_failed(self, message: QueuedMessage, reason: str) -> None:
        with self._lock:
            status = self._status.get(message.message_id)
            if status is not None:
                status.attempts = message.attempts
            self.counters["callback_failures"] += 1
            self.counters[f"callback_failure_{reason}"] += 1

    def _dead_lettered(self, message: QueuedMessage, reason: str) -> None:
        now = self._clock()
        raised = self.dead_letters.add(DeadLetter(message.message_id, message.from_id, message.to_id, reason,
                                                  message.attempts, round(max(now - message.date, 0.0), 3), now))
        with self._lock:
            status = self._status.get(message.message_id)
            if status is not None:
                status.state, status.attempts, status.reason = "dead_letter", message.attempts, reason
            self.counters["dead_letters"] += 1
        if raised:  # one line per alarm, not per message: the counts are in delivery_status()
            log.warning("dead letter for %s: %s from %s after %d attempts: %s (alarm raised)",
                        message.to_id, message.message_id, message.from_id, message.attempts, reason)

    # -- health -------------------------------------------------------------------------

    def delivery_status(self) -> dict:
        """The gateway's part of /api/feeds: per recipient its queue (depth, retrying, oldest
        age), dead letters and queue-full refusals with the last reason; the totals; `alarm`
        while any recipient had one of those in the last `alarm_window_s`."""
        now = self._clock()
        with self._lock:
            queues = dict(self._queues)
        recipients = {identity: {**queue.depth(), **self.dead_letters.report(identity, now)}
                      for identity, queue in sorted(queues.items())}
        return {
            "queue_depth": sum(r["queued"] for r in recipients.values()),
            "retrying": sum(r["retrying"] for r in recipients.values()),
            "dead_letters": sum(r["dead_letters"] for r in recipients.values()),
            "refused_queue_full": sum(r["refused_queue_full"] for r in recipients.values()),
            "alarm": any(r["alarm"] for r in recipients.values()),
            # undelivered messages an earlier gateway on this store left, queued again at start
            "restored": self.counters["restored"],
            "recipients": recipients,
        }
