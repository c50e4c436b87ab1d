"""Gateway rules, answered with Threema's status codes (no HTTP here)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from orbitcast.gateway import BlobStore, Gateway, GatewayConfig
from orbitcast.gateway.client import LocalGatewayClient, send_e2e_many, upload_blobs
from orbitcast.gateway.errors import BadRequest, NoCredits, NotFound, TooLarge, Unauthorized, Unavailable
from orbitcast.gateway.lookup import email_hash, phone_hash
from orbitcast.sealing.envelope import seal

try:
    from tests.unit.gateway_fixtures import Account, make_gateway, new_account
except ImportError:  # tests/ is not a package: pytest put tests/unit on sys.path
    from gateway_fixtures import Account, make_gateway, new_account  # type: ignore[no-redef]

NONCE = "ab" * 24


@pytest.fixture()
def accounts() -> dict[str, Account]:
    return {name: new_account(name) for name in ("*ORBPACK", "*ORBEDGE")}


@pytest.fixture()
def gateway(tmp_path: Path, accounts: dict[str, Account]) -> Gateway:
    return make_gateway(
        tmp_path,
        [accounts["*ORBPACK"].config(credits=3), accounts["*ORBEDGE"].config(phone="41791234567", email="Edge@Orbit.example ")],
        max_blob_bytes=1000,
        max_queue=2,
    )


def _box(accounts: dict[str, Account], size: int = 100) -> str:
    envelope = seal(0x01, b"x" * size, accounts["*ORBPACK"].keys.private, accounts["*ORBEDGE"].keys.public, pad_len=1)
    return envelope.box_hex


def test_authenticate(gateway: Gateway, accounts: dict[str, Account]) -> None:
    assert gateway.authenticate("*ORBPACK", accounts["*ORBPACK"].secret) == "*ORBPACK"


def test_wrong_secret_is_401(gateway: Gateway) -> None:
    with pytest.raises(Unauthorized) as info:
        gateway.authenticate("*ORBPACK", "wrong")
    assert info.value.status == 401 and gateway.counters["refused_unauthorized"] == 1


def test_unknown_api_identity_is_401(gateway: Gateway, accounts: dict[str, Account]) -> None:
    with pytest.raises(Unauthorized):
        gateway.authenticate("*NOBODY1", accounts["*ORBPACK"].secret)


def test_unknown_identity_is_404(gateway: Gateway) -> None:
    for call in (lambda: gateway.public_key_hex("*NOBODY1"), lambda: gateway.capabilities("*NOBODY1"),
                 lambda: gateway.send_e2e("*ORBPACK", "*NOBODY1", NONCE, "00" * 40)):
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.status == 404


def test_public_key_and_capabilities(gateway: Gateway, accounts: dict[str, Account]) -> None:
    assert gateway.public_key_hex("*ORBEDGE") == accounts["*ORBEDGE"].keys.public_hex
    assert "file" in gateway.capabilities("*ORBEDGE")


def test_send_e2e_queues_in_order_with_16_hex_ids_and_charges(gateway: Gateway, accounts: dict[str, Account]) -> None:
    first = gateway.send_e2e("*ORBPACK", "*ORBEDGE", NONCE, _box(accounts))
    second = gateway.send_e2e("*ORBPACK", "*ORBEDGE", NONCE, _box(accounts))
    assert re.fullmatch(r"[0-9a-f]{16}", first) and first != second
    assert [m.message_id for m in gateway.pending("*ORBEDGE")] == [first, second]
    assert gateway.credits("*ORBPACK") == 1
    assert gateway.message_status(first).state == "queued"
    # Pull mode: a recipient takes any pending message, each once
    assert gateway.acknowledge("*ORBEDGE", second) is True
    assert gateway.acknowledge("*ORBEDGE", second) is False
    assert [m.message_id for m in gateway.pending("*ORBEDGE")] == [first]
    assert gateway.message_status(second).state == "delivered"
    assert gateway.message_status(first).state == "queued"


def test_bad_recipient_is_400(gateway: Gateway, accounts: dict[str, Account]) -> None:
    for to in (None, "", "*SHORT", "*orbedge"):
        with pytest.raises(BadRequest):
            gateway.send_e2e("*ORBPACK", to, NONCE, _box(accounts))


def test_bad_nonce_or_box_is_400(gateway: Gateway, accounts: dict[str, Account]) -> None:
    for nonce, box in ((NONCE[:-2], _box(accounts)), ("zz" * 24, _box(accounts)), (NONCE, "abc"), (NONCE, "")):
        with pytest.raises(BadRequest):
            gateway.send_e2e("*ORBPACK", "*ORBEDGE", nonce, box)


def test_box_over_4000_bytes_is_413(gateway: Gateway) -> None:
    gateway.send_e2e("*ORBPACK", "*ORBEDGE", NONCE, "00" * 4000)  # exactly the limit is fine
    with pytest.raises(TooLarge) as info:
        gateway.send_e2e("*ORBPACK", "*ORBEDGE", NONCE, "00" * 4001)
    assert info.value.status == 413


def test_no_credits_is_402(gateway: Gateway, accounts: dict[str, Account]) -> None:
    gateway.set_credits("*ORBPACK", 0)
    with pytest.raises(NoCredits) as info:
        gateway.send_e2e("*ORBPACK", "*ORBEDGE", NONCE, _box(accounts))
    assert info.value.status == 402 and gateway.pending("*ORBEDGE") == []
    with pytest.raises(NoCredits):
        gateway.upload_blob("*ORBPACK", b"blob")


def test_full_recipient_queue_is_503_and_not_charged(gateway: Gateway, accounts: dict[str, Account]) -> None:
    gateway.send_e2e("*ORBPACK", "*ORBEDGE", NONCE, _box(accounts))
    gateway.send_e2e("*ORBPACK", "*ORBEDGE", NONCE, _box(accounts))
    with pytest.raises(Unavailable):
        gateway.send_e2e("*ORBPACK", "*ORBEDGE", NONCE, _box(accounts))
    assert gateway.credits("*ORBPACK") == 1
    # never a silent loss: the refusal is on the recipient's record, with the alarm up
    status = gateway.delivery_status()
    edge = status["recipients"]["*ORBEDGE"]
    assert edge["refused_queue_full"] == 1 and edge["last_reason"] == "queue_full" and edge["alarm"]
    assert edge["queued"] == 2 and status["queue_depth"] == 2
    assert status["refused_queue_full"] == 1 and status["alarm"] and status["dead_letters"] == 0
    assert status["recipients"]["*ORBPACK"]["alarm"] is False


def test_a_batch_of_sends_gets_each_message_its_id_or_its_refusal(gateway: Gateway,
                                                                    accounts: dict[str, Account]) -> None:
    # the helpers a packager batches with, over a client without a batch call (the HTTP API's
    # shape): each send on its own, a full queue refusing the third without stopping the batch
    client = LocalGatewayClient(gateway, "*ORBPACK", accounts["*ORBPACK"].secret)
    blob_ids = upload_blobs(client, [b"one", b"two"], transient=True)
    assert [gateway.download_blob(i) for i in blob_ids] == [b"one", b"two"]
    envelope = seal(0x01, b"x" * 100, accounts["*ORBPACK"].keys.private, accounts["*ORBEDGE"].keys.public, pad_len=1)
    results = send_e2e_many(client, [("*ORBEDGE", envelope)] * 3)
    assert all(re.fullmatch("[0-9a-f]{16}", r) for r in results[:2])
    assert isinstance(results[2], Unavailable) and len(gateway.pending("*ORBEDGE")) == 2

def test_send_simple_is_refused_clearly(gateway: Gateway) -> None:
    with pytest.raises(BadRequest) as info:
        gateway.send_simple("*ORBPACK")
    assert "send_e2e" in info.value.reason


def test_blob_upload_download_and_limits(gateway: Gateway) -> None:
    blob_id = gateway.upload_blob("*ORBPACK", b"\x00\x01" * 500)
    assert re.fullmatch(r"[0-9a-f]{32}", blob_id)
    assert gateway.download_blob(blob_id) == b"\x00\x01" * 500


def test_empty_blob_is_400(gateway: Gateway) -> None:
    with pytest.raises(BadRequest) as info:
        gateway.upload_blob("*ORBPACK", b"")
    assert info.value.status == 400


def test_blob_over_limit_is_413(gateway: Gateway) -> None:
    with pytest.raises(TooLarge):
        gateway.upload_blob("*ORBPACK", b"x" * 1001)


def test_unknown_or_malformed_blob_is_404(gateway: Gateway) -> None:
    for blob_id in ("0" * 32, "../../etc/passwd", "A" * 32, ""):
        with pytest.raises(NotFound):
            gateway.download_blob(blob_id)


def test_blobs_persist_through_pyarrow_fs(tmp_path: Path) -> None:
    store = BlobStore(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "blobs")
    blob_id = store.put(b"sealed segment")
    again = BlobStore.from_uri(f"file://{tmp_path}/blobs")
    assert again.get(blob_id) == b"sealed segment" and again.exists(blob_id)
    assert (tmp_path / "blobs" / blob_id[:2] / blob_id).read_bytes() == b"sealed segment"
    again.delete(blob_id)
    assert not store.exists(blob_id)


def test_lookup_by_phone_email_and_hashes(gateway: Gateway) -> None:
    assert gateway.lookup("phone", "41791234567") == "*ORBEDGE"
    assert gateway.lookup("email", "edge@orbit.example") == "*ORBEDGE"
    assert gateway.lookup("phone_hash", phone_hash("+41 79 123 45 67")) == "*ORBEDGE"
    assert gateway.lookup("email_hash", email_hash("  EDGE@orbit.example")) == "*ORBEDGE"
    with pytest.raises(NotFound):
        gateway.lookup("phone", "1234")
    with pytest.raises(BadRequest):
        gateway.lookup("phone_hash", "xyz")


def test_lookup_hashes_match_the_sdk() -> None:
    from threema.gateway.key import HMAC

    assert email_hash("a@b.ch") == HMAC.hash("a@b.ch", "email").hexdigest()
    assert phone_hash("41791234567") == HMAC.hash("41791234567", "phone").hexdigest()


def test_config_rejects_bad_identity_and_key() -> None:
    with pytest.raises(ValueError, match="identity"):
        GatewayConfig.model_validate({"identities": [{"identity": "short", "secret": "s", "public_key": "00" * 32}]})
    with pytest.raises(ValueError, match="public_key"):
        GatewayConfig.model_validate({"identities": [{"identity": "*ORBEDGE", "secret": "s", "public_key": "private:" + "00" * 32}]})
