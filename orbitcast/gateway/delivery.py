"""Callback delivery: POST each queued message, with its MAC, to the recipient's URL.

One worker thread per recipient keeps delivery in order: it retries the head with
exponential backoff until the receiver answers 200 (at least once), then moves on. The
HTTP client is injected (`Poster`), so the same logic runs with `requests` in production
and against real local servers in tests.
"""

from __future__ import annotations

import logging
import threading
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
        """The status of each body, in order (raise on transport error)."""


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


#: called after a 200: (message, attempts it took)
DeliveredHook = Callable[[QueuedMessage], None]


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


class RecipientWorker:
    """Delivers one recipient's queue in order on its own thread; `backoff` is its own, since
    it counts this recipient's failures."""

    def __init__(
        self,
        queue: RecipientQueue,
        url: str,
        secret: str,
        poster: Poster,
        backoff: Backoff,
        on_delivered: DeliveredHook,
        on_failure: Callable[[QueuedMessage, str], None],
    ) -> None:
        self.queue = queue
        self.url = url
        self._secret = secret
        self._poster = poster
        self._backoff = backoff
        self._on_delivered = on_delivered
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"threema-callback-{queue.identity}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.queue.wake()
        self._thread.join(timeout)

    def attempt(self, message: QueuedMessage) -> bool:
        """One POST of `message`; True when the receiver answered 200."""
        message.attempts += 1
        try:
            status = self._poster(self.url, callback_body(message, self._secret))
        except Exception as exc:  # transport errors are retried like any non-200
            self._on_failure(message, type(exc).__name__)
            return False
        if status == 200:
            return True
        self._on_failure(message, f"http_{status}")
        return False

    def attempt_many(self, messages: list[QueuedMessage]) -> int:
        """One exchange carrying `messages`; how many of them, from the first, were answered
        200 (in order: a refused message stays the head and the ones after it are retried)."""
        assert isinstance(self._poster, BatchPoster)
        for m in messages:
            m.attempts += 1
        try:
            statuses = self._poster.post_many(self.url, [callback_body(m, self._secret) for m in messages])
        except Exception as exc:  # noqa: BLE001 - retried like a non-200
            self._on_failure(messages[0], type(exc).__name__)
            return 0
        done = 0
        for status in statuses:
            if status != 200:
                self._on_failure(messages[done], f"http_{status}")
                break
            done += 1
        return done

    def _run(self) -> None:
        batching = isinstance(self._poster, BatchPoster)
        while not self._stop.is_set():
            messages = self.queue.peek(BATCH if batching else 1, timeout=0.5)
            if not messages:
                continue
            done = self.attempt_many(messages) if batching else int(self.attempt(messages[0]))
            for message in messages[:done]:
                self.queue.ack(message.message_id)
                self._on_delivered(message)
            if done == len(messages):
                self._backoff.reset()
                continue
            self._stop.wait(self._backoff.next_delay())
