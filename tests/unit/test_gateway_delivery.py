"""Callback delivery: in order while callbacks succeed; a failed message retried on its own with
backoff while others go on; dead letters after the budget, counted; receipts back."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from orbitcast.gateway.callback_app import build_callback_app
from orbitcast.gateway.client import GatewayClient
from orbitcast.gateway.delivery import RequestsPoster
from orbitcast.gateway.errors import NotFound
from orbitcast.gateway.http import build_gateway_app
from orbitcast.sealing.blobs import SegmentMeta
from orbitcast.sealing.callback import build_callback_fields
from orbitcast.sealing.messages import DeliveryReceipt, ReceiptStatus
from orbitcast.sealing.receiver import Received, Receiver
from orbitcast.sealing.sealer import SegmentSealer

try:
    from tests.unit.gateway_fixtures import ServerThread, make_gateway, new_account, wait_for
except ImportError:
    from gateway_fixtures import ServerThread, make_gateway, new_account, wait_for  # type: ignore[no-redef]


def test_segments_reach_the_edge_in_order_and_receipts_reach_the_packager(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    edge_got: list[Received] = []
    pack_got: list[Received] = []
    lock = threading.Lock()
    gateway = make_gateway(tmp_path, [], retry_initial_s=0.01)
    with ServerThread(build_gateway_app(gateway)) as gw:
        edge_client = GatewayClient(gw.url, edge.identity, edge.secret)
        pack_client = GatewayClient(gw.url, pack.identity, pack.secret)
        edge_receiver = Receiver(edge.identity, edge.keys, edge.secret, edge_client.public_key, edge_client.download_blob)
        pack_receiver = Receiver(pack.identity, pack.keys, pack.secret, pack_client.public_key)

        def on_edge(received: Received) -> None:
            with lock:
                edge_got.append(received)
            edge_client.send_e2e(received.sender, edge_receiver.receipt_for(received))

        with ServerThread(build_callback_app(edge_receiver, on_edge)) as edge_srv, \
                ServerThread(build_callback_app(pack_receiver, pack_got.append)) as pack_srv:
            gateway.add_identity(pack.config(callback_url=pack_srv.url + "/callback"))
            gateway.add_identity(edge.config(callback_url=edge_srv.url + "/callback"))
            gateway.start_delivery(RequestsPoster(timeout_s=5))
            try:
                sealer = SegmentSealer(pack.keys, max_blob_bytes=40_000)
                segments = [os.urandom(30_000 + 10_000 * i) for i in range(5)]
                sent_ids: list[str] = []
                edge_key = pack_client.public_key("*ORBEDGE")
                assert edge_key is not None
                for seq, data in enumerate(segments):
                    meta = SegmentMeta.for_data(data, feed="iss", rendition="360p", seq=seq, duration=2.0,
                                                program_date_time=datetime.now(timezone.utc))
                    sealed = sealer.seal_segment(data, meta, {"*ORBEDGE": edge_key}, pack_client.upload_blob)
                    sent_ids += [pack_client.send_e2e(o.to_id, o.envelope) for o in sealed.outgoing]
                assert wait_for(lambda: len(pack_got) == len(sent_ids))
            finally:
                gateway.stop_delivery()
    complete = [r for r in edge_got if r.segment is not None]
    assert [r.meta.seq for r in complete if r.meta] == [0, 1, 2, 3, 4]
    assert [r.segment for r in complete] == segments
    assert [r.message_id for r in edge_got] == sent_ids  # in order, each once
    receipts = [r.message for r in pack_got]
    assert all(isinstance(m, DeliveryReceipt) and m.status == ReceiptStatus.RECEIVED for m in receipts)
    assert [m.message_ids_hex[0] for m in receipts if isinstance(m, DeliveryReceipt)] == sent_ids
    assert all(gateway.message_status(i).state == "delivered" for i in sent_ids)


def _texts(gateway, pack, edge, n: int, prefix: str = "m") -> list[str]:  # type: ignore[no-untyped-def]
    sealer = SegmentSealer(pack.keys)
    return [gateway.send_e2e("*ORBPACK", "*ORBEDGE", e.nonce_hex, e.box_hex)
            for e in (sealer.seal_text("*ORBEDGE", edge.keys.public, f"{prefix}{i}") for i in range(n))]


def test_a_failed_message_is_retried_with_its_own_backoff_until_200(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    attempts: list[tuple[float, str]] = []
    accepted: list[str] = []
    receiver = Receiver(edge.identity, edge.keys, edge.secret, {"*ORBPACK": pack.keys.public}.get)
    flaky = FastAPI()

    @flaky.post("/callback")
    async def callback(request: Request) -> Response:
        raw = await request.body()
        attempts.append((time.monotonic(), raw.decode()))
        if len(attempts) <= 3:  # down for the first three tries
            return Response(status_code=503)
        accepted.append(receiver.handle_body(raw).message_id)
        return Response(status_code=200)

    with ServerThread(flaky) as server:
        gateway = make_gateway(
            tmp_path, [pack.config(), edge.config(callback_url=server.url + "/callback")],
            retry_initial_s=0.05, retry_factor=2.0, retry_max_s=1.0,
        )
        ids = _texts(gateway, pack, edge, 1)
        gateway.start_delivery()
        try:
            assert wait_for(lambda: len(accepted) == 1)
        finally:
            gateway.stop_delivery()
    assert accepted == ids
    assert len(attempts) == 4 and gateway.message_status(ids[0]).attempts == 4
    gaps = [b[0] - a[0] for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.195  # 0.05, 0.1, 0.2
    assert gateway.counters["callback_failure_http_503"] == 3
    assert len({body for _, body in attempts}) == 1  # every retry carried the same message
    assert gateway.delivery_status()["dead_letters"] == 0


def test_a_callback_failing_for_one_feed_does_not_hold_back_another(tmp_path: Path) -> None:
    """Feed A's blobs cannot be fetched, so the edge's real Receiver answers its messages 500;
    feed B's messages, queued between A's, are all delivered, in their order, long before A's
    retry budget runs out; then each of A's is a dead letter with its reason, counted."""
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    accepted: list[tuple[float, Received]] = []
    dead_at: list[float] = []
    broken: set[str] = set()  # feed A's blob ids
    gateway = make_gateway(tmp_path, [], retry_initial_s=0.4, retry_factor=2.0, retry_max_s=2.0, max_attempts=3)
    with ServerThread(build_gateway_app(gateway)) as gw:
        edge_client = GatewayClient(gw.url, edge.identity, edge.secret)
        pack_client = GatewayClient(gw.url, pack.identity, pack.secret)

        def fetch(blob_id: str) -> bytes:
            if blob_id in broken:
                raise ConnectionError("blob store unreachable for this blob")
            return edge_client.download_blob(blob_id)

        receiver = Receiver(edge.identity, edge.keys, edge.secret, edge_client.public_key, fetch)
        with ServerThread(build_callback_app(receiver, lambda r: accepted.append((time.monotonic(), r)))) as edge_srv:
            gateway.add_identity(pack.config())
            gateway.add_identity(edge.config(callback_url=edge_srv.url + "/callback"))
            sealer = SegmentSealer(pack.keys)
            edge_key = pack_client.public_key("*ORBEDGE")
            assert edge_key is not None
            ids: dict[str, list[str]] = {"A": [], "B": []}
            for seq in range(5):
                for feed in ("A", "B"):
                    data = os.urandom(5000)
                    meta = SegmentMeta.for_data(data, feed=feed, rendition="360p", seq=seq, duration=1.0)

                    def upload(blob: bytes, feed: str = feed) -> str:
                        blob_id = pack_client.upload_blob(blob)
                        if feed == "A":
                            broken.add(blob_id)
                        return blob_id

                    sealed = sealer.seal_segment(data, meta, {"*ORBEDGE": edge_key}, upload)
                    ids[feed] += [pack_client.send_e2e(o.to_id, o.envelope) for o in sealed.outgoing]
            original = gateway._dead_lettered
            gateway._dead_lettered = lambda m, r: (dead_at.append(time.monotonic()), original(m, r))  # type: ignore[method-assign]
            gateway.start_delivery(RequestsPoster(timeout_s=5))
            try:
                assert wait_for(lambda: len(dead_at) == 5, timeout=20)
            finally:
                gateway.stop_delivery()
    got_b = [(t, r) for t, r in accepted if r.meta is not None and r.meta.feed == "B"]
    assert [r.meta.seq for _, r in got_b if r.meta] == [0, 1, 2, 3, 4]  # each once, in order
    assert [r.message_id for _, r in got_b] == ids["B"]
    assert not [r for _, r in accepted if r.meta is not None and r.meta.feed == "A"]
    assert max(t for t, _ in got_b) < min(dead_at)  # B never waited behind A
    status = gateway.delivery_status()
    edge_status = status["recipients"]["*ORBEDGE"]
    assert status["dead_letters"] == 5 and edge_status["dead_letters"] == 5 and edge_status["alarm"]
    assert edge_status["last_reason"] == "http_500" and edge_status["queued"] == 0
    assert {letter.message_id for letter in gateway.dead_letters.letters("*ORBEDGE")} == set(ids["A"])
    for message_id in ids["A"]:
        final = gateway.message_status(message_id)
        assert final.state == "dead_letter" and final.reason == "http_500" and final.attempts == 3
    assert all(gateway.message_status(i).state == "delivered" for i in ids["B"])


def test_a_recipient_that_does_not_answer_pauses_its_lane_and_spends_no_retry_budget(tmp_path: Path) -> None:
    """Connection refused is the recipient's state, not the message's: the lane waits with a
    growing backoff, the order holds, and max_attempts=1 dead-letters nothing."""
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    receiver = Receiver(edge.identity, edge.keys, edge.secret, {"*ORBPACK": pack.keys.public}.get)
    calls: list[float] = []
    accepted: list[str] = []

    def poster(url: str, body: bytes) -> int:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise ConnectionError("connection refused")
        status, received = receiver.answer_callback(body)
        if received is not None:
            accepted.append(received.message_id)
        return status

    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url="http://edge.invalid/callback")],
                           retry_initial_s=0.05, retry_factor=2.0, retry_max_s=1.0, max_attempts=1)
    ids = _texts(gateway, pack, edge, 3)
    gateway.start_delivery(poster)
    try:
        assert wait_for(lambda: len(accepted) == 3)
    finally:
        gateway.stop_delivery()
    assert accepted == ids
    gaps = [b - a for a, b in zip(calls, calls[1:4])]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.195
    assert gateway.message_status(ids[0]).attempts == 4 and gateway.delivery_status()["dead_letters"] == 0
    assert gateway.counters["callback_failure_ConnectionError"] == 3


def test_a_recipient_that_comes_up_late_gets_everything_queued_meanwhile_in_order(tmp_path: Path) -> None:
    """A subscriber whose callback server starts after the feed did (its first message is the
    init segment): what piled up during the outage arrives in the order it was sent."""
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    receiver = Receiver(edge.identity, edge.keys, edge.secret, {"*ORBPACK": pack.keys.public}.get)
    recipient = _BatchRecipient(receiver)
    down = threading.Event()
    down.set()
    tries: list[int] = []

    class Late:
        def __call__(self, url: str, body: bytes) -> int:
            return self.post_many(url, [body])[0]

        def post_many(self, url: str, bodies: list[bytes]) -> list[int]:
            tries.append(len(bodies))
            if down.is_set():
                raise ConnectionError("connection refused")
            return recipient.post_many(url, bodies)

    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url="http://edge.invalid/callback")],
                           retry_initial_s=0.01, retry_factor=1.5, retry_max_s=0.05, max_attempts=1)
    gateway.start_delivery(Late())
    try:
        ids: list[str] = []
        for burst in range(6):  # messages keep coming while the recipient is down
            ids += _texts(gateway, pack, edge, 5, prefix=f"b{burst}-")
            time.sleep(0.03)
        assert wait_for(lambda: len(tries) >= 8)
        down.clear()
        assert wait_for(lambda: len(recipient.accepted) == len(ids))
    finally:
        gateway.stop_delivery()
    assert recipient.accepted == ids
    assert gateway.delivery_status()["dead_letters"] == 0


def test_a_message_past_max_age_is_a_dead_letter_even_when_nothing_answers(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")

    def poster(url: str, body: bytes) -> int:
        raise ConnectionError("connection refused")

    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url="http://edge.invalid/callback")],
                           retry_initial_s=0.05, retry_max_s=0.1, max_age_s=0.5)
    ids = _texts(gateway, pack, edge, 3)
    gateway.start_delivery(poster)
    try:
        assert wait_for(lambda: gateway.delivery_status()["dead_letters"] == 3, timeout=5)
    finally:
        gateway.stop_delivery()
    letters = {letter.message_id: letter for letter in gateway.dead_letters.letters("*ORBEDGE")}
    assert set(letters) == set(ids) and gateway.pending("*ORBEDGE") == []
    assert letters[ids[0]].reason == "expired (ConnectionError)" and letters[ids[0]].attempts >= 2
    assert all(letter.age_s >= 0 for letter in letters.values())


def test_a_4xx_answer_is_a_dead_letter_at_once_and_letters_are_kept_bounded(tmp_path: Path) -> None:
    """Threema's receivers answer 400 to a message they refuse (wrong MAC here: the edge's
    secret at the gateway is not the one its receiver knows); asking again cannot help."""
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    receiver = Receiver(edge.identity, edge.keys, "another secret", {"*ORBPACK": pack.keys.public}.get)
    calls: list[int] = []

    def poster(url: str, body: bytes) -> int:
        status, _ = receiver.answer_callback(body)
        calls.append(status)
        return status

    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url="http://edge.invalid/callback")],
                           dead_letters_kept=3)
    ids = _texts(gateway, pack, edge, 5)
    gateway.start_delivery(poster)
    try:
        assert wait_for(lambda: gateway.delivery_status()["dead_letters"] == 5)
    finally:
        gateway.stop_delivery()
    assert calls == [400] * 5  # one try each
    assert [letter.message_id for letter in gateway.dead_letters.letters("*ORBEDGE")] == ids[2:]  # the newest 3
    report = gateway.delivery_status()["recipients"]["*ORBEDGE"]
    assert report["dead_letters"] == 5 and report["last_reason"] == "http_400" and len(report["recent"]) == 3


def test_unreachable_callback_keeps_message_queued(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url="http://127.0.0.1:9/callback")],
                           retry_initial_s=0.01, retry_max_s=0.02)
    envelope = SegmentSealer(pack.keys).seal_text("*ORBEDGE", edge.keys.public, "x")
    message_id = gateway.send_e2e("*ORBPACK", "*ORBEDGE", envelope.nonce_hex, envelope.box_hex)
    gateway.start_delivery()
    try:
        assert wait_for(lambda: gateway.message_status(message_id).attempts >= 3)
    finally:
        gateway.stop_delivery()
    assert gateway.message_status(message_id).state == "queued"
    assert [m.message_id for m in gateway.pending("*ORBEDGE")] == [message_id]
    depth = gateway.delivery_status()["recipients"]["*ORBEDGE"]
    assert depth["queued"] == 1 and depth["dead_letters"] == 0


class _BatchRecipient:
    """A recipient reached in batches (as the edge actor is inside the cluster): each body is a
    whole Threema callback, opened by a real Receiver; `refuse_at` makes one message fail once."""

    def __init__(self, receiver: Receiver, refuse_at: int | None = None) -> None:
        self.receiver = receiver
        self.refuse_at = refuse_at
        self.batches: list[int] = []
        self.accepted: list[str] = []
        self.seen = 0

    def __call__(self, url: str, body: bytes) -> int:
        return self.post_many(url, [body])[0]

    def post_many(self, url: str, bodies: list[bytes]) -> list[int]:
        self.batches.append(len(bodies))
        out = []
        for body in bodies:
            self.seen += 1
            if self.seen - 1 == self.refuse_at:
                out.append(503)
                continue
            status, received = self.receiver.answer_callback(body)
            if received is not None:
                self.accepted.append(received.message_id)
            out.append(status)
        return out


def test_a_batching_poster_gets_the_queue_in_batches_and_a_refusal_is_retried_alone(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    receiver = Receiver(edge.identity, edge.keys, edge.secret, {"*ORBPACK": pack.keys.public}.get)
    recipient = _BatchRecipient(receiver, refuse_at=5)
    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url="http://edge.invalid/callback")],
                           retry_initial_s=0.05)
    ids = _texts(gateway, pack, edge, 20)
    gateway.start_delivery(recipient)
    try:
        assert wait_for(lambda: len(recipient.accepted) == 20)
    finally:
        gateway.stop_delivery()
    # the 19 others in the first exchange, the refused one alone after its backoff; each once
    assert recipient.batches == [20, 1]
    assert recipient.accepted == ids[:5] + ids[6:] + [ids[5]]
    assert gateway.counters["callback_failure_http_503"] == 1
    assert all(gateway.message_status(i).state == "delivered" for i in ids)


def test_transient_blobs_stay_in_memory_and_the_oldest_go_first(tmp_path: Path) -> None:
    pack = new_account("*ORBPACK")
    gateway = make_gateway(tmp_path, [pack.config()], transient_blob_bytes=25_000)
    kept = gateway.upload_blob("*ORBPACK", b"k" * 1000)
    parts = [gateway.upload_blob("*ORBPACK", bytes([i]) * 10_000, transient=True) for i in range(3)]
    assert list((tmp_path / "blobs").rglob("*")) and all(not list((tmp_path / "blobs").rglob(p)) for p in parts)
    with pytest.raises(NotFound):
        gateway.download_blob(parts[0])  # evicted: 30 KB over a 25 KB budget
    assert gateway.download_blob(parts[2]) == bytes([2]) * 10_000
    assert gateway.download_blob(kept) == b"k" * 1000


def test_one_receipt_confirms_many_messages() -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    keys = {"*ORBPACK": pack.keys.public, "*ORBEDGE": edge.keys.public}
    edge_receiver = Receiver(edge.identity, edge.keys, edge.secret, keys.get)
    ids = [os.urandom(8) for _ in range(150)]
    envelope = edge_receiver.receipt_for_ids("*ORBPACK", ids)
    pack_receiver = Receiver(pack.identity, pack.keys, pack.secret, keys.get)
    fields = build_callback_fields(pack.secret, from_id="*ORBEDGE", to_id="*ORBPACK", message_id="00" * 8,
                                   date=int(time.time()), nonce_hex=envelope.nonce_hex, box_hex=envelope.box_hex)
    message = pack_receiver.handle_fields(fields).message
    assert isinstance(message, DeliveryReceipt) and message.message_ids == tuple(ids)
    assert len(envelope.box_hex) // 2 < 4000  # within Threema's box limit
