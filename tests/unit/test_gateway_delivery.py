"""Callback delivery over real HTTP: in order, retried with backoff until 200, receipts back."""

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


def test_callback_is_retried_with_backoff_until_200_and_order_holds(tmp_path: Path) -> None:
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
        received = receiver.handle_body(raw)
        accepted.append(received.message_id)
        return Response(status_code=200)

    with ServerThread(flaky) as server:
        gateway = make_gateway(
            tmp_path, [pack.config(), edge.config(callback_url=server.url + "/callback")],
            retry_initial_s=0.05, retry_factor=2.0, retry_max_s=1.0,
        )
        sealer = SegmentSealer(pack.keys)
        ids = [gateway.send_e2e("*ORBPACK", "*ORBEDGE", e.nonce_hex, e.box_hex)
               for e in (sealer.seal_text("*ORBEDGE", edge.keys.public, f"m{i}") for i in range(3))]
        gateway.start_delivery()
        try:
            assert wait_for(lambda: len(accepted) == 3)
        finally:
            gateway.stop_delivery()
    assert accepted == ids
    assert len(attempts) == 6 and gateway.message_status(ids[0]).attempts == 4
    gaps = [b[0] - a[0] for a, b in zip(attempts[:3], attempts[1:4])]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.195  # 0.05, 0.1, 0.2
    assert gateway.counters["callback_failure_http_503"] == 3
    # every retry carried the same message (at least once, never a different head)
    assert len({body for _, body in attempts[:4]}) == 1


def test_a_recipient_that_recovered_waits_the_first_delay_again_after_its_next_failure(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    answers = iter([503, 503, 200, 503, 200])
    times: list[float] = []

    def poster(url: str, body: bytes) -> int:
        times.append(time.monotonic())
        return next(answers, 200)

    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url="http://edge.invalid/callback")],
                           retry_initial_s=0.05, retry_factor=10.0, retry_max_s=5.0)
    sealer = SegmentSealer(pack.keys)
    for i in range(2):
        e = sealer.seal_text("*ORBEDGE", edge.keys.public, f"m{i}")
        gateway.send_e2e("*ORBPACK", "*ORBEDGE", e.nonce_hex, e.box_hex)
    gateway.start_delivery(poster)
    try:
        assert wait_for(lambda: len(times) >= 5)
    finally:
        gateway.stop_delivery()
    assert times[2] - times[1] >= 0.45  # the second retry of the first outage waited 0.5 s
    # The success reset the count: 0.05 s, not the 5 s a fourth failure in a row would wait.
    assert times[4] - times[3] < 2.5


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


class _BatchRecipient:
    """A recipient reached in batches (as an actor is inside the cluster): each body is a whole
    Threema callback, opened by a real Receiver; `refuse_at` makes one message fail once."""

    def __init__(self, receiver: Receiver, refuse_at: int | None = None) -> None:
        self.receiver = receiver
        self.refuse_at = refuse_at
        self.batches: list[int] = []
        self.accepted: list[str] = []

    def __call__(self, url: str, body: bytes) -> int:
        return self.post_many(url, [body])[0]

    def post_many(self, url: str, bodies: list[bytes]) -> list[int]:
        self.batches.append(len(bodies))
        out = []
        for body in bodies:
            if self.refuse_at is not None and len(self.accepted) == self.refuse_at:
                self.refuse_at = None
                out.append(503)
                break
            status, received = self.receiver.answer_callback(body)
            if received is not None:
                self.accepted.append(received.message_id)
            out.append(status)
        return out


def test_a_batching_poster_gets_the_queue_in_batches_in_order_and_a_refusal_keeps_its_place(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    receiver = Receiver(edge.identity, edge.keys, edge.secret, {"*ORBPACK": pack.keys.public}.get)
    recipient = _BatchRecipient(receiver, refuse_at=5)
    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url="http://edge.invalid/callback")],
                           retry_initial_s=0.01)
    sealer = SegmentSealer(pack.keys)
    ids = [gateway.send_e2e("*ORBPACK", "*ORBEDGE", e.nonce_hex, e.box_hex)
           for e in (sealer.seal_text("*ORBEDGE", edge.keys.public, f"m{i}") for i in range(20))]
    gateway.start_delivery(recipient)
    try:
        assert wait_for(lambda: len(recipient.accepted) == 20)
    finally:
        gateway.stop_delivery()
    assert recipient.accepted == ids  # in order, each once, across the refusal
    assert recipient.batches[0] == 20 and len(recipient.batches) == 2  # 5 taken, refused, then the other 15
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
