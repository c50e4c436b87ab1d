"""The strict receiver: everything a hostile or broken sender can do is refused, once each."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timezone

import pytest
from nacl.public import Box, PublicKey

from orbitcast.sealing.blobs import SegmentMeta, encrypt_blob
from orbitcast.sealing.callback import build_callback_fields, encode_callback
from orbitcast.sealing.envelope import SealedEnvelope, open_envelope, seal
from orbitcast.sealing.errors import (
    BadBlob,
    BadCallbackMac,
    BadDigest,
    BadMac,
    BadPadding,
    ReplayedMessage,
    UnknownSender,
)
from orbitcast.sealing.keys import KeyPair, generate_key_pair
from orbitcast.sealing.messages import DeliveryReceipt, FileMessage, ReceiptStatus, TextMessage, decode_message
from orbitcast.sealing.receiver import Receiver
from orbitcast.sealing.sealer import SegmentSealer

SECRET = "edge-secret"


class World:
    """A packager and an edge with an in-memory blob table (the gateway is tested elsewhere)."""

    def __init__(self) -> None:
        self.packager = generate_key_pair()
        self.edge = generate_key_pair()
        self.blobs: dict[str, bytes] = {}
        self.directory: dict[str, PublicKey] = {"*ORBPACK": self.packager.public, "*ORBEDGE": self.edge.public}
        self.receiver = Receiver("*ORBEDGE", self.edge, SECRET, self.directory.get, self.blobs.__getitem__)

    def upload(self, blob: bytes) -> str:
        blob_id = secrets.token_hex(16)
        self.blobs[blob_id] = blob
        return blob_id

    def fields(self, envelope: SealedEnvelope, sender: str = "*ORBPACK", message_id: str | None = None) -> dict[str, str]:
        return build_callback_fields(
            SECRET, from_id=sender, to_id="*ORBEDGE", message_id=message_id or secrets.token_hex(8),
            date=1700000000, nonce_hex=envelope.nonce_hex, box_hex=envelope.box_hex,
        )

    def text(self, text: str = "hi", sender_keys: KeyPair | None = None) -> SealedEnvelope:
        return seal(0x01, TextMessage(text).encode(), (sender_keys or self.packager).private, self.edge.public)


@pytest.fixture()
def world() -> World:
    return World()


def _meta(data: bytes, seq: int = 1) -> SegmentMeta:
    return SegmentMeta.for_data(data, feed="iss", rendition="720p", seq=seq, duration=2.0,
                                program_date_time=datetime(2030, 1, 1, tzinfo=timezone.utc))


def test_text_is_accepted_and_counted(world: World) -> None:
    received = world.receiver.handle_body(encode_callback(world.fields(world.text("hello edge"))))
    assert received.message == TextMessage("hello edge") and received.sender == "*ORBPACK"
    assert world.receiver.counters["accepted"] == 1


def test_segment_sealed_for_recipients_opens_and_verifies(world: World) -> None:
    data = os.urandom(50_000)
    other = generate_key_pair()
    sealed = SegmentSealer(world.packager).seal_segment(
        data, _meta(data), {"*ORBEDGE": world.edge.public, "*SUBSCR1": other.public}, world.upload
    )
    assert len(world.blobs) == 1  # sealed once, whatever the number of recipients
    assert [o.to_id for o in sealed.outgoing] == ["*ORBEDGE", "*SUBSCR1"]
    mine = next(o for o in sealed.outgoing if o.to_id == "*ORBEDGE")
    received = world.receiver.handle_fields(world.fields(mine.envelope))
    assert received.segment == data and received.content == data
    assert received.meta is not None and received.meta.seq == 1 and received.meta.rendition == "720p"
    # The other recipient's box is not ours to open.
    theirs = next(o for o in sealed.outgoing if o.to_id == "*SUBSCR1")
    with pytest.raises(BadMac):
        open_envelope(theirs.envelope.nonce, theirs.envelope.box, world.edge.private, world.packager.public)


def test_fragmented_segment_completes_on_last_part(world: World) -> None:
    data = os.urandom(70_000)
    sealed = SegmentSealer(world.packager, max_blob_bytes=30_000).seal_segment(
        data, _meta(data), {"*ORBEDGE": world.edge.public}, world.upload
    )
    results = [world.receiver.handle_fields(world.fields(o.envelope)) for o in reversed(sealed.outgoing)]
    assert [r.segment for r in results[:-1]] == [None, None]
    assert results[-1].segment == data
    assert world.receiver.missing_fragments() == {}


def test_a_batch_sealed_at_once_uploads_in_one_call_and_each_opens(world: World) -> None:
    items = [os.urandom(n) for n in (20_000, 70_000, 5_000)]  # the second in three blobs
    calls: list[int] = []

    def upload_many(blobs):
        calls.append(len(blobs))
        return [world.upload(b) for b in blobs]

    sealed = SegmentSealer(world.packager, max_blob_bytes=30_000).seal_many(
        [(data, _meta(data, seq=i), {"*ORBEDGE": world.edge.public}) for i, data in enumerate(items)],
        upload_many)
    assert calls == [5] and len(world.blobs) == 5
    for i, (data, s) in enumerate(zip(items, sealed)):
        results = [world.receiver.handle_fields(world.fields(o.envelope)) for o in s.outgoing]
        assert results[-1].segment == data and results[-1].meta.seq == i
    # an uploader that loses a blob id is refused, not misaddressed
    with pytest.raises(ValueError):
        SegmentSealer(world.packager).seal_many([(items[0], _meta(items[0]), {})], lambda blobs: [])

def test_tampered_box_is_refused(world: World) -> None:
    envelope = world.text()
    box = bytearray(envelope.box)
    box[-3] ^= 1
    with pytest.raises(BadMac):
        world.receiver.handle_fields(world.fields(SealedEnvelope(envelope.nonce, bytes(box))))
    assert world.receiver.counters["bad_mac"] == 1


def test_wrong_callback_mac_is_refused(world: World) -> None:
    fields = world.fields(world.text())
    fields["mac"] = fields["mac"][::-1]
    with pytest.raises(BadCallbackMac):
        world.receiver.handle_fields(fields)
    assert world.receiver.counters["bad_callback_mac"] == 1


def test_bad_padding_is_refused(world: World) -> None:
    nonce = os.urandom(24)
    plaintext = b"\x01" + b"hello" * 8 + b"\x04\x04\x05\x04"
    box = Box(world.packager.private, world.edge.public).encrypt(plaintext, nonce).ciphertext
    with pytest.raises(BadPadding):
        world.receiver.handle_fields(world.fields(SealedEnvelope(nonce, box)))


def test_replayed_message_id_is_refused_idempotently(world: World) -> None:
    fields = world.fields(world.text("once"))
    assert world.receiver.handle_fields(fields).message == TextMessage("once")
    with pytest.raises(ReplayedMessage):
        world.receiver.handle_fields(fields)
    assert world.receiver.counters["accepted"] == 1 and world.receiver.counters["replayed_message"] == 1


def test_replayed_nonce_under_a_new_message_id_is_refused(world: World) -> None:
    envelope = world.text("once")
    world.receiver.handle_fields(world.fields(envelope))
    with pytest.raises(ReplayedMessage):
        world.receiver.handle_fields(world.fields(envelope))


def test_unknown_sender_is_refused(world: World) -> None:
    stranger = generate_key_pair()
    with pytest.raises(UnknownSender):
        world.receiver.handle_fields(world.fields(world.text(sender_keys=stranger), sender="*STRANGE"))


def test_failed_message_is_not_remembered_so_a_retry_succeeds(world: World) -> None:
    data = os.urandom(1000)
    sealed = SegmentSealer(world.packager).seal_segment(data, _meta(data), {"*ORBEDGE": world.edge.public}, world.upload)
    fields = world.fields(sealed.outgoing[0].envelope)
    saved = dict(world.blobs)
    world.blobs.clear()  # blob not there yet (e.g. a store hiccup): the fetch fails
    with pytest.raises(KeyError):
        world.receiver.handle_fields(fields)
    world.blobs.update(saved)
    assert world.receiver.handle_fields(fields).segment == data


def test_blob_with_wrong_digest_is_refused(world: World) -> None:
    data = os.urandom(1000)
    honest = _meta(data)
    lying = FileMessage(
        blob_id=world.upload(b""), key=os.urandom(32), mime_type="video/mp4", file_name="x.m4s",
        size=len(data), x=dict(honest.to_x(), digest="00" * 32),
    )
    world.blobs[lying.blob_id] = encrypt_blob(lying.key, data)
    envelope = seal(0x17, lying.encode(), world.packager.private, world.edge.public)
    with pytest.raises(BadDigest):
        world.receiver.handle_fields(world.fields(envelope))
    lying_size = FileMessage(**{**lying.__dict__, "size": len(data) + 1, "x": honest.to_x()})
    with pytest.raises(BadBlob):
        world.receiver.handle_fields(world.fields(seal(0x17, lying_size.encode(), world.packager.private, world.edge.public)))


def test_receipt_for_a_message_opens_at_the_sender(world: World) -> None:
    fields = world.fields(world.text())
    received = world.receiver.handle_fields(fields)
    envelope = world.receiver.receipt_for(received)
    opened = open_envelope(envelope.nonce, envelope.box, world.packager.private, world.edge.public)
    receipt = decode_message(opened.type, opened.body)
    assert receipt == DeliveryReceipt(ReceiptStatus.RECEIVED, (bytes.fromhex(fields["messageId"]),))


def test_a_callback_is_answered_200_and_handed_on_once_even_when_the_gateway_resends_it(world: World) -> None:
    body = encode_callback(world.fields(world.text("once")))
    status, received = world.receiver.answer_callback(body)
    assert status == 200 and received is not None and received.message == TextMessage("once")
    assert world.receiver.answer_callback(body) == (200, None)  # a lost 200: resent, not handed on again


def test_a_refused_callback_is_answered_400_and_nothing_is_handed_on(world: World) -> None:
    fields = world.fields(world.text())
    fields["mac"] = fields["mac"][::-1]
    assert world.receiver.answer_callback(encode_callback(fields)) == (400, None)
    assert world.receiver.answer_callback(b"not=a&callback=at all") == (400, None)


def test_a_callback_whose_blob_cannot_be_fetched_is_answered_500_so_the_gateway_retries(world: World) -> None:
    data = os.urandom(1000)
    sealed = SegmentSealer(world.packager).seal_segment(data, _meta(data), {"*ORBEDGE": world.edge.public}, world.upload)
    body = encode_callback(world.fields(sealed.outgoing[0].envelope))
    saved = dict(world.blobs)
    world.blobs.clear()
    assert world.receiver.answer_callback(body) == (500, None)
    world.blobs.update(saved)
    status, received = world.receiver.answer_callback(body)
    assert status == 200 and received is not None and received.segment == data
