"""A strict Threema E2E recipient: callback fields in, opened and verified messages out.

Order of checks, cheapest and least revealing first: callback MAC (authenticates every
field), addressee, replay (message id, then box nonce), sender key, box, padding, body; for
file messages the blob (secretbox MAC), its size `s`, and the digest in `x` (after
reassembly when fragmented). A message id is remembered only after it was accepted, so a
message that failed on a transient blob fetch is processed when the gateway retries.

Replays raise `ReplayedMessage`; an HTTP front answers those with 200 because the gateway
delivers at least once and a lost 200 makes it resend (idempotent, never processed twice).
`Receiver.answer_callback` is that answer, for every front (HTTP app, actor, deployment).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from nacl.public import Box, PrivateKey, PublicKey

from .blobs import Reassembler, SegmentMeta, decrypt_blob, fragment_position, open_file_blob, verify_whole
from .callback import CallbackMessage, parse_callback_body, verify_callback
from .envelope import SealedEnvelope, open_with_box, seal_with_box
from .errors import BadMessage, ReplayedMessage, SealingError, UnknownSender
from .keys import KeyPair, validate_identity
from .messages import DeliveryReceipt, FileMessage, Message, ReceiptStatus, decode_message

log = logging.getLogger(__name__)

#: sender identity -> its public key, or None when unknown (e.g. GET /pubkeys answered 404)
PublicKeyLookup = Callable[[str], "PublicKey | None"]
#: blob id -> the blob's bytes (e.g. GET /blobs/{id})
BlobFetcher = Callable[[str], bytes]


@dataclass(frozen=True)
class Received:
    """One accepted message. For file messages `content` is the opened blob; `segment` is
    the whole verified segment once complete (equal to `content` when not fragmented, None
    while fragments are missing) and `meta` its `x` metadata (None when `x` lacks it)."""

    sender: str
    message_id: str
    callback: CallbackMessage
    message: Message
    content: bytes | None = None
    thumbnail: bytes | None = None
    meta: SegmentMeta | None = None
    segment: bytes | None = None


class _SeenSet:
    """Bounded memory of accepted ids; `reserve` makes check-and-claim atomic across threads."""

    def __init__(self, capacity: int) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._in_flight: set[tuple[str, str]] = set()
        self._capacity = capacity
        self._lock = threading.Lock()

    def reserve(self, keys: list[tuple[str, str]]) -> None:
        with self._lock:
            for key in keys:
                if key in self._seen or key in self._in_flight:
                    raise ReplayedMessage("message already accepted")
            self._in_flight.update(keys)

    def commit(self, keys: list[tuple[str, str]]) -> None:
        with self._lock:
            for key in keys:
                self._in_flight.discard(key)
                self._seen[key] = None
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)

    def release(self, keys: list[tuple[str, str]]) -> None:
        with self._lock:
            self._in_flight.difference_update(keys)


class Receiver:
    def __init__(
        self,
        identity: str,
        keys: KeyPair,
        api_secret: str,
        public_key_of: PublicKeyLookup,
        fetch_blob: BlobFetcher | None = None,
        *,
        seen_capacity: int = 200_000,
        reassembler: Reassembler | None = None,
    ) -> None:
        self.identity = validate_identity(identity)
        self._keys = keys
        self._secret = api_secret
        self._public_key_of = public_key_of
        self._fetch_blob = fetch_blob
        self._seen = _SeenSet(seen_capacity)
        self._boxes: dict[bytes, Box] = {}
        self._boxes_lock = threading.Lock()
        self._reassembler = reassembler or Reassembler()
        self._reassembler_lock = threading.Lock()
        #: refusals by reason code plus "accepted"; read by health endpoints and tests
        self.counters: Counter[str] = Counter()

    # -- entry points -------------------------------------------------------------------

    def handle_body(self, raw: bytes) -> Received:
        """Raw urlencoded callback body -> accepted message, or a `SealingError`."""
        try:
            fields = parse_callback_body(raw)
        except SealingError as exc:
            self.counters[exc.code] += 1
            raise
        return self.handle_fields(fields)

    def answer_callback(self, raw: bytes) -> tuple[int, Received | None]:
        """A callback body -> the HTTP status a Threema recipient answers, and the message to
        hand on (None when there is nothing new to hand on).

        200 with the message on acceptance; 200 without it for a replay (the gateway resends
        until it sees 200, so a lost 200 must not become a second copy); 400 for a refusal, the
        reason logged and never told to the sender; 500 when opening failed for any other
        reason (a blob fetch), so that the gateway tries again later.
        """
        try:
            return 200, self.handle_body(raw)
        except ReplayedMessage:
            return 200, None
        except SealingError as exc:
            log.info("callback refused: %s", exc.code)
            return 400, None
        except Exception:  # noqa: BLE001 - the gateway retries until it sees 200
            log.exception("callback processing failed")
            return 500, None

    def handle_fields(self, fields: Mapping[str, str]) -> Received:
        try:
            received = self._handle(fields)
        except SealingError as exc:
            self.counters[exc.code] += 1
            raise
        self.counters["accepted"] += 1
        return received

    def missing_fragments(self) -> dict[tuple[str, str, str, int, str], list[int]]:
        with self._reassembler_lock:
            return self._reassembler.missing()

    def receipt_for(self, received: Received, status: ReceiptStatus = ReceiptStatus.RECEIVED) -> SealedEnvelope:
        """Seal a delivery receipt for `received` back to its sender. Only a recipient can
        do this (the gateway never holds our private key), so the edge calls it and sends
        the result with send_e2e to `received.sender`."""
        return self.receipt_for_ids(received.sender, [received.callback.message_id_bytes], status)

    def receipt_for_ids(self, sender: str, message_ids: Sequence[bytes],
                        status: ReceiptStatus = ReceiptStatus.RECEIVED) -> SealedEnvelope:
        """One receipt confirming several messages of `sender` (Threema's receipts carry a list,
        so a recipient of many small messages need not answer each with a message of its own)."""
        receipt = DeliveryReceipt(status, tuple(message_ids))
        return seal_with_box(self._box_for(sender), receipt.type, receipt.encode())

    # -- the checks ---------------------------------------------------------------------

    def _box_for(self, sender: str) -> Box:
        public = self._public_key_of(sender)
        if public is None:
            raise UnknownSender("no public key for the sender")
        raw = bytes(public)
        with self._boxes_lock:
            box = self._boxes.get(raw)
            if box is None:
                box = Box(self._keys.private, public)
                if len(self._boxes) > 10_000:
                    self._boxes.clear()
                self._boxes[raw] = box
        return box

    def _handle(self, fields: Mapping[str, str]) -> Received:
        cb = verify_callback(fields, secret=self._secret, self_id=self.identity)
        # A replay is caught by its message id, and by its box nonce when re-sent under a
        # new message id: an E2E nonce is random and never legitimately used twice.
        claim = [("id", f"{cb.from_id}:{cb.message_id}"), ("nonce", f"{cb.from_id}:{cb.nonce.hex()}")]
        self._seen.reserve(claim)
        try:
            received = self._open(cb)
        except BaseException:
            self._seen.release(claim)
            raise
        self._seen.commit(claim)
        return received

    def _open(self, cb: CallbackMessage) -> Received:
        box = self._box_for(cb.from_id)
        opened = open_with_box(box, cb.nonce, cb.box)
        message = decode_message(opened.type, opened.body)
        base = Received(sender=cb.from_id, message_id=cb.message_id, callback=cb, message=message)
        if isinstance(message, FileMessage):
            return self._open_file(base, message)
        return base

    def _open_file(self, base: Received, message: FileMessage) -> Received:
        if self._fetch_blob is None:
            raise BadMessage("this receiver does not accept files")
        content = open_file_blob(message, self._fetch_blob(message.blob_id))
        thumbnail = None
        if message.thumbnail_blob_id:
            thumbnail = decrypt_blob(message.key, self._fetch_blob(message.thumbnail_blob_id), thumbnail=True)
        meta = SegmentMeta.from_x(message.x) if "digest" in message.x else None
        segment: bytes | None = None
        if meta is not None:
            position = fragment_position(message.x)
            if position is None:
                segment = verify_whole(content, meta)
            else:
                with self._reassembler_lock:
                    segment = self._reassembler.add(base.sender, meta, position[0], position[1], content)
        return Received(
            sender=base.sender,
            message_id=base.message_id,
            callback=base.callback,
            message=message,
            content=content,
            thumbnail=thumbnail,
            meta=meta,
            segment=segment,
        )
