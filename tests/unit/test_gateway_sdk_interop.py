"""Interop with the official Threema Gateway SDK (threema.gateway 8.0.0), both directions.

The SDK's `Connection.urls` point at our gateway app served by uvicorn on 127.0.0.1; the
SDK's own aiohttp callback server runs on 127.0.0.1 too. Nothing is mocked.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from aiohttp import web
from threema.gateway import Connection, e2e

from orbitcast.gateway import Gateway
from orbitcast.gateway.callback_app import build_callback_app
from orbitcast.gateway.client import GatewayClient
from orbitcast.gateway.http import build_gateway_app
from orbitcast.sealing.blobs import SegmentMeta, sha256_hex
from orbitcast.sealing.callback import build_callback_fields, encode_callback
from orbitcast.sealing.messages import DeliveryReceipt, FileMessage, ReceiptStatus, TextMessage
from orbitcast.sealing.receiver import Received, Receiver
from orbitcast.sealing.sealer import SegmentSealer

try:
    from tests.unit.gateway_fixtures import (
        AsyncLoopThread, ServerThread, make_gateway, new_account, start_aiohttp_site, wait_for)
except ImportError:
    from gateway_fixtures import (  # type: ignore[no-redef]
        AsyncLoopThread, ServerThread, make_gateway, new_account, start_aiohttp_site, wait_for)

PACK, EDGE, SDK = new_account("*ORBPACK"), new_account("*ORBEDGE"), new_account("*SDKUSER")
THREEMA = "https://msgapi.threema.ch"


class Stack:
    def __init__(self, gateway: Gateway, url: str, loop: AsyncLoopThread, edge_url: str) -> None:
        self.gateway, self.url, self.loop, self.edge_url = gateway, url, loop, edge_url
        self.edge_got: list[Received] = []
        self.pack = GatewayClient(url, PACK.identity, PACK.secret)

    def connection(self) -> Connection:
        """An SDK connection for *SDKUSER pointed at our gateway (build it inside the loop)."""
        conn = Connection(SDK.identity, SDK.secret, key=SDK.keys.private_string)
        conn.urls = {name: value.replace(THREEMA, self.url) for name, value in Connection.urls.items()}
        return conn

    def run(self, coro: Any) -> Any:
        return self.loop.run(coro)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    gateway = make_gateway(tmp_path_factory.mktemp("sdk"), [PACK.config(), SDK.config()], retry_initial_s=0.01)
    with ServerThread(build_gateway_app(gateway)) as gw, AsyncLoopThread() as loop:
        edge_client = GatewayClient(gw.url, EDGE.identity, EDGE.secret)
        receiver = Receiver(EDGE.identity, EDGE.keys, EDGE.secret, edge_client.public_key, edge_client.download_blob)
        holder: list[Stack] = []
        with ServerThread(build_callback_app(receiver, lambda r: holder[0].edge_got.append(r))) as edge_srv:
            holder.append(Stack(gateway, gw.url, loop, edge_srv.url + "/callback"))
            gateway.add_identity(EDGE.config(callback_url=holder[0].edge_url))
            gateway.start_delivery()
            try:
                yield holder[0]
            finally:
                gateway.stop_delivery()


def _sdk_key(stack: Stack) -> Any:
    key = stack.pack.public_key(SDK.identity)
    assert key is not None
    return key


def test_sdk_decrypts_our_file_message_and_downloads_our_blob(stack: Stack) -> None:
    data = os.urandom(300_000)
    meta = SegmentMeta.for_data(data, feed="iss", rendition="360p", seq=12, duration=2.0,
                                program_date_time=datetime.now(timezone.utc))
    sealed = SegmentSealer(PACK.keys).seal_segment(data, meta, {SDK.identity: _sdk_key(stack)}, stack.pack.upload_blob)
    envelope = sealed.outgoing[0].envelope

    async def receive() -> Any:
        async with stack.connection() as conn:
            return await e2e.Message.receive(
                conn, {"from_id": PACK.identity, "message_id": os.urandom(8), "date": datetime.now()},
                envelope.nonce, envelope.box)

    message = stack.run(receive())
    assert message.type == e2e.Message.Type.file_message  # SDK classes are proxied: no isinstance
    assert message.file_content == data
    assert message.mime_type == "video/mp4" and message._file_name == "iss-360p-00000012.m4s"


def test_sdk_decrypts_our_text_and_delivery_receipt(stack: Stack) -> None:
    sealer = SegmentSealer(PACK.keys)
    text = sealer.seal_text(SDK.identity, _sdk_key(stack), "Grüße aus dem Orbit")
    message_ids = (os.urandom(8), os.urandom(8))
    receipt_body = DeliveryReceipt(ReceiptStatus.RECEIVED, message_ids)
    receipt = sealer.seal_envelope(SDK.identity, _sdk_key(stack), receipt_body.type, receipt_body.encode())

    async def receive() -> tuple[Any, Any]:
        async with stack.connection() as conn:
            params = {"from_id": PACK.identity, "message_id": os.urandom(8), "date": datetime.now()}
            return (await e2e.Message.receive(conn, params, text.nonce, text.box),
                    await e2e.Message.receive(conn, params, receipt.nonce, receipt.box))

    sdk_text, sdk_receipt = stack.run(receive())
    assert sdk_text.type == e2e.Message.Type.text_message and sdk_text.text == "Grüße aus dem Orbit"
    assert sdk_receipt.type == e2e.Message.Type.delivery_receipt
    assert sdk_receipt.receipt_type == e2e.DeliveryReceipt.ReceiptType.received
    assert tuple(sdk_receipt.message_ids) == message_ids


def test_messages_the_sdk_sends_reach_our_receiver(stack: Stack) -> None:
    content, thumbnail = os.urandom(20_000), os.urandom(700)

    async def send() -> tuple[str, str]:
        async with stack.connection() as conn:
            text_id = await e2e.TextMessage(conn, to_id=EDGE.identity, text="hello from the SDK").send()
            file_id = await e2e.FileMessage(
                conn, to_id=EDGE.identity, file_content=content, mime_type="video/mp4", file_name="clip.mp4",
                thumbnail_content=thumbnail, caption="a clip").send()
            return text_id, file_id

    text_id, file_id = stack.run(send())
    assert wait_for(lambda: {text_id, file_id} <= {r.message_id for r in stack.edge_got})
    by_id = {r.message_id: r for r in stack.edge_got}
    assert by_id[text_id].message == TextMessage("hello from the SDK") and by_id[text_id].sender == SDK.identity
    got = by_id[file_id]
    assert isinstance(got.message, FileMessage)
    assert got.content == content and got.thumbnail == thumbnail
    assert got.message.file_name == "clip.mp4" and got.message.caption == "a clip"
    assert got.meta is None  # SDK files carry no segment metadata; nothing is invented


def test_sdk_callback_server_accepts_our_callbacks_and_refuses_forged_mac(stack: Stack) -> None:
    received: list[Any] = []
    arrived = threading.Event()

    async def start() -> tuple[web.AppRunner, str, Connection]:
        conn = stack.connection()
        app = e2e.create_application(conn)

        async def handler(message: Any) -> None:
            received.append(message)
            arrived.set()

        e2e.add_callback_route(conn, app, handler, path="/gateway_callback")
        runner, url = await start_aiohttp_site(app)
        return runner, url + "/gateway_callback", conn

    runner, sdk_url, conn = stack.run(start())
    try:
        stack.gateway.add_identity(SDK.config(callback_url=sdk_url))  # the worker starts for the new URL
        envelope = SegmentSealer(PACK.keys).seal_text(SDK.identity, _sdk_key(stack), "to the SDK's server")
        message_id = stack.pack.send_e2e(SDK.identity, envelope)
        assert arrived.wait(10)
        assert received[0].type == e2e.Message.Type.text_message and received[0].text == "to the SDK's server"
        assert received[0].message_id == bytes.fromhex(message_id)
        assert wait_for(lambda: stack.gateway.message_status(message_id).state == "delivered")

        # A forged MAC: the SDK's server answers 400, and so does ours.
        # Each forged callback carries a box that really is for its target, so only the MAC is wrong.
        for identity, url, secret_owner in ((SDK.identity, sdk_url, SDK), (EDGE.identity, stack.edge_url, EDGE)):
            envelope = SegmentSealer(PACK.keys).seal_text(identity, secret_owner.keys.public, "forged")
            fields = build_callback_fields(secret_owner.secret, from_id=PACK.identity, to_id=identity,
                                           message_id=os.urandom(8).hex(), date=1700000000,
                                           nonce_hex=envelope.nonce_hex, box_hex=envelope.box_hex)
            fields["mac"] = build_callback_fields("forged", from_id=PACK.identity, to_id=identity,
                                                  message_id=fields["messageId"], date=1700000000,
                                                  nonce_hex=envelope.nonce_hex, box_hex=envelope.box_hex)["mac"]
            response = requests.post(url, data=encode_callback(fields),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
            assert response.status_code == 400, url
        assert len(received) == 1
        assert not [r for r in stack.edge_got if r.message == TextMessage("forged")]
    finally:
        stack.gateway.add_identity(SDK.config())  # stop delivering to the server we tear down
        stack.run(runner.cleanup())
        stack.run(conn.close())


def test_sdk_blob_is_the_one_we_store(stack: Stack) -> None:
    async def upload() -> str:
        async with stack.connection() as conn:
            return await conn.upload(b"ciphertext bytes")

    blob_id = stack.run(upload())
    assert stack.gateway.blobs.get(blob_id) == b"ciphertext bytes"
    assert sha256_hex(stack.pack.download_blob(blob_id)) == sha256_hex(b"ciphertext bytes")
