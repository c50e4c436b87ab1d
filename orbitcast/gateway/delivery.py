"""Callback delivery: POST each queued message, with its MAC, to the recipient's URL.

One worker thread per recipient takes what its queue (`queues.py`) has due, oldest first, and
hands it over (at least once: a message is done when the receiver answered 200). What happens
to a message that was not answered 200:

- a 4xx other than 408/425/429: the recipient refused it for good: dead-lettered at once;
- any other answer (a 5xx, a redirect): retried with its own exponential backoff while the
  messages behind it go on; dead-lettered after `max_attempts` such answers;
- no answer (connection refused, timeout, the recipient's actor away): the recipient is down,
  not the message: the messages go back in front, in order, and the whole lane waits with the
  recipient's backoff; only `max_age_s` bounds how long they wait.

The HTTP client is injected (`Poster`), so the same logic runs with `requests` in production
and against real local servers in tests.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import requests

from orbitcast.backoff import Backoff
from orbitcast.sealing.callback import build_callback_fields, encode_callback

from .queues import QueuedMessage, RecipientQueue

log = logging.getLogger(__name__)


class Poster(Protocol):
    def __call__(self, url: str, body: bytes) -> int:
        """POST `body` (urlencoded) to `url`; return the HTTP status (raise on transport error)."""


@runtime_checkable
class BatchPoster(Poster, Protocol):
    """A poster that can also hand several callbacks to one recipient in one exchange (inside
    a cluster, a call to the recipient's actor); each body is still a whole Threema callback."""

    def post_many(self, url: str, bodies: list[bytes]) -> list[int]:
        """The status of each body, in order; a shorter list when it stopped early (the rest
        were not tried). Raise on a transport error before any body was answered."""


BATCH = 64  # callbacks per exchange with a batching poster


class RequestsPoster:
    """Production poster: a pooled `requests.Session` with a timeout."""

    def __init__(self, timeout_s: float = 5.0, session: requests.Session | None = None) -> None:
        self._session = session or requests.Session()
        self._timeout = timeout_s

    def __call__(self, url: str, body: bytes) -> int:
        response = self._session.post(
            url,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=self._timeout,
            allow_redirects=False,  # a redirect is not a 200: retried, never followed blindly
        )
        response.close()
        return response.status_code


#: called after a 200
DeliveredHook = Callable[[QueuedMessage], None]
#: called after every failed try: (message, reason such as "http_500" or "ConnectionError")
FailureHook = Callable[[QueuedMessage, str], None]
#: called when a message is given up on: (message, reason)
DeadHook = Callable[[QueuedMessage, str], None]

RETRIED_4XX = {408, 425, 429}  # the 4xx answers that mean "not now" rather than "never"
EXPIRE_EVERY_S = 0.5  # how often a worker looks for messages past max_age


def callback_body(message: QueuedMessage, recipient_secret: str) -> bytes:
    fields = build_callback_fields(
        recipient_secret,
        from_id=message.from_id,
        to_id=message.to_id,
        message_id=message.message_id,
        date=message.date,
        nonce_hex=message.nonce_hex,
        box_hex=message.box_hex,
        nickname=message.nickname,
    )
    return encode_callback(fields)


def refused_for_good(status: int) -> bool:
    return 400 <= status < 500 and status not in RETRIED_4XX


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed message is tried again, and when it is given up on."""

    initial_s: float = 0.05
    factor: float = 2.0
    max_s: float = 5.0
    max_attempts: int = 10
    max_age_s: float = 300.0

    def delay(self, failures: int) -> float:
        """The wait before the next try of a message that has failed `failures` times."""
        # No jitter: one worker retries one recipient's URL; there is no herd to spread.
        return Backoff(self.initial_s, self.factor, self.max_s, jitter=0.0, attempt=max(failures - 1, 0)).next_delay()

    def recipient_backoff(self) -> Backoff:
        return Backoff(self.initial_s, self.factor, self.max_s, jitter=0.0)


class RecipientWorker:
    """Delivers one recipient's queue on its own thread."""

    def __init__(
        self,
        queue: RecipientQueue,
        url: str,
        secret: str,
        poster: Poster,
        policy: RetryPolicy,
        on_delivered: DeliveredHook,
        on_failure: FailureHook,
        on_dead: DeadHook,
    ) -> None:
        self.queue = queue
        self.url = url
        self._secret = secret
        self._poster = poster
        self._policy = policy
        # the recipient's own: counts exchanges in a row that got no answer at all
        self._backoff = policy.recipient_backoff()
        self._on_delivered = on_delivered
        self._on_failure = on_failure
        self._on_dead = on_dead
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"threema-callback-{queue.identity}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.queue.wake()
        self._thread.join(timeout)

    def exchange(self, messages: list[QueuedMessage]) -> bool:
        """One exchange carrying `messages` (one POST, or one batch with a batching poster),
        each settled by its own answer. False when the recipient gave no answer at all."""
        for m in messages:
            m.attempts += 1
        try:
            if isinstance(self._poster, BatchPoster):
                statuses = self._poster.post_many(self.url, [callback_body(m, self._secret) for m in messages])
            else:
                statuses = [self._poster(self.url, callback_body(messages[0], self._secret))]
        except Exception as exc:  # noqa: BLE001 - no answer: the recipient is down, not the message
            reason = type(exc).__name__
            for m in messages:
                m.last_failure = reason
                self._on_failure(m, reason)
            # Back in front, in order: the lane waits (the caller's backoff) and starts again
            # with them, so an outage reorders nothing and spends no retry budget.
            self.queue.release(messages)
            return False
        answered = messages[: len(statuses)]
        for message, status in zip(answered, statuses):
            if status == 200:
                if self.queue.done(message):
                    self._on_delivered(message)
            else:
                self._refused(message, f"http_{status}", final=refused_for_good(status))
        unanswered = messages[len(statuses):]
        for m in unanswered:
            m.attempts -= 1  # not tried after all
        self.queue.release(unanswered)
        return True

    def _refused(self, message: QueuedMessage, reason: str, *, final: bool) -> None:
        """The recipient answered, but not 200: this message waits (or is given up), alone."""
        message.last_failure = reason
        message.refusals += 1
        self._on_failure(message, reason)
        if final or message.refusals >= self._policy.max_attempts:
            if self.queue.remove(message):
                self._on_dead(message, reason)
        else:
            self.queue.retry(message, self._policy.delay(message.refusals))

    def expire(self) -> None:
        for message in self.queue.expire(self._policy.max_age_s):
            self._on_dead(message, f"expired ({message.last_failure or 'never answered'})")

    def _run(self) -> None:
        limit = BATCH if isinstance(self._poster, BatchPoster) else 1
        next_expiry = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_expiry:
                self.expire()
                next_expiry = time.monotonic() + EXPIRE_EVERY_S
            messages = self.queue.take(limit, timeout=EXPIRE_EVERY_S)
            if not messages:
                continue
            if self.exchange(messages):
                self._backoff.reset()
            else:
                self._stop.wait(self._backoff.next_delay())
