"""The gateway's HTTP API on a real uvicorn server, driven with requests and GatewayClient."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
import requests

from orbitcast.gateway import Gateway
from orbitcast.gateway.client import GatewayClient, GatewayHTTPError
from orbitcast.gateway.http import build_gateway_app
from orbitcast.sealing.envelope import seal

try:
    from tests.unit.gateway_fixtures import Account, ServerThread, make_gateway, new_account
except ImportError:
    from gateway_fixtures import Account, ServerThread, make_gateway, new_account  # type: ignore[no-redef]

PACK, EDGE = new_account("*ORBPACK"), new_account("*ORBEDGE")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    gateway = make_gateway(
        tmp_path_factory.mktemp("gw"), [PACK.config(), EDGE.config(email="edge@orbit.example")], max_blob_bytes=4096
    )
    with ServerThread(build_gateway_app(gateway)) as server:
        yield gateway, server.url


def _auth(account: Account) -> dict[str, str]:
    return {"from": account.identity, "secret": account.secret}


def _send(url: str, **form: str) -> requests.Response:
    return requests.post(f"{url}/send_e2e", data=dict(_auth(PACK), **form), timeout=5)


def test_pubkeys_capabilities_credits_lookup(served: tuple[Gateway, str]) -> None:
    _, url = served
    response = requests.get(f"{url}/pubkeys/*ORBEDGE", params=_auth(PACK), timeout=5)
    assert response.status_code == 200 and response.text == EDGE.keys.public_hex  # no trailing newline
    assert requests.get(f"{url}/capabilities/*ORBEDGE", params=_auth(PACK), timeout=5).text.split(",") == [
        "text", "image", "video", "file"]
    assert int(requests.get(f"{url}/credits", params=_auth(PACK), timeout=5).text) > 0
    assert requests.get(f"{url}/lookup/email/edge@orbit.example", params=_auth(PACK), timeout=5).text == "*ORBEDGE"


def test_wrong_secret_is_401(served: tuple[Gateway, str]) -> None:
    _, url = served
    response = requests.get(f"{url}/credits", params={"from": "*ORBPACK", "secret": "nope"}, timeout=5)
    assert response.status_code == 401
    assert _send(url, secret="nope", to="*ORBEDGE", nonce="00" * 24, box="00" * 40).status_code == 401


def test_unknown_identity_is_404(served: tuple[Gateway, str]) -> None:
    _, url = served
    assert requests.get(f"{url}/pubkeys/*NOBODY1", params=_auth(PACK), timeout=5).status_code == 404
    assert _send(url, to="*NOBODY1", nonce="00" * 24, box="00" * 40).status_code == 404


def test_send_e2e_answers_message_id(served: tuple[Gateway, str]) -> None:
    gateway, url = served
    envelope = seal(0x01, b"hi", PACK.keys.private, EDGE.keys.public)
    response = _send(url, to="*ORBEDGE", nonce=envelope.nonce_hex, box=envelope.box_hex)
    assert response.status_code == 200 and re.fullmatch(r"[0-9a-f]{16}", response.text)
    assert response.text in [m.message_id for m in gateway.pending("*ORBEDGE")]


def test_bad_recipient_is_400(served: tuple[Gateway, str]) -> None:
    _, url = served
    assert _send(url, to="bad", nonce="00" * 24, box="00" * 40).status_code == 400


def test_oversize_box_is_413(served: tuple[Gateway, str]) -> None:
    _, url = served
    assert _send(url, to="*ORBEDGE", nonce="00" * 24, box="00" * 4001).status_code == 413
    # A body far beyond any legal form is cut off without being buffered.
    assert _send(url, to="*ORBEDGE", nonce="00" * 24, box="00" * 100_000).status_code == 413


def test_no_credits_is_402(served: tuple[Gateway, str]) -> None:
    gateway, url = served
    before = gateway.credits("*ORBPACK")
    gateway.set_credits("*ORBPACK", 0)
    try:
        assert _send(url, to="*ORBEDGE", nonce="00" * 24, box="00" * 40).status_code == 402
    finally:
        gateway.set_credits("*ORBPACK", before)


def test_send_simple_is_400_with_reason(served: tuple[Gateway, str]) -> None:
    _, url = served
    response = requests.post(f"{url}/send_simple", data=dict(_auth(PACK), to="*ORBEDGE", text="hi"), timeout=5)
    assert response.status_code == 400 and "send_e2e" in response.text


def test_upload_and_download_blob(served: tuple[Gateway, str]) -> None:
    _, url = served
    response = requests.post(f"{url}/upload_blob", params=_auth(PACK), files={"blob": ("blob", b"\x00\xffdata\r\n--x")}, timeout=5)
    assert response.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", response.text)
    got = requests.get(f"{url}/blobs/{response.text}", params=_auth(EDGE), timeout=5)
    assert got.status_code == 200 and got.content == b"\x00\xffdata\r\n--x"
    assert requests.get(f"{url}/blobs/{'0' * 32}", params=_auth(EDGE), timeout=5).status_code == 404


def test_empty_blob_is_400(served: tuple[Gateway, str]) -> None:
    _, url = served
    response = requests.post(f"{url}/upload_blob", params=_auth(PACK), files={"blob": ("blob", b"")}, timeout=5)
    assert response.status_code == 400


def test_blob_over_limit_is_413(served: tuple[Gateway, str]) -> None:
    _, url = served
    response = requests.post(f"{url}/upload_blob", params=_auth(PACK), files={"blob": ("blob", b"x" * 4097)}, timeout=5)
    assert response.status_code == 413


def test_upload_without_credentials_is_401_and_malformed_multipart_400(served: tuple[Gateway, str]) -> None:
    _, url = served
    assert requests.post(f"{url}/upload_blob", files={"blob": ("blob", b"x")}, timeout=5).status_code == 401
    response = requests.post(f"{url}/upload_blob", params=_auth(PACK), data=b"garbage",
                             headers={"Content-Type": "multipart/form-data; boundary=zzz"}, timeout=5)
    assert response.status_code == 400
    response = requests.post(f"{url}/upload_blob", params=_auth(PACK), files={"other": ("b", b"x")}, timeout=5)
    assert response.status_code == 400


def test_multipart_refusals_name_what_is_wrong(served: tuple[Gateway, str]) -> None:
    _, url = served
    body = b'--b0und\r\nContent-Disposition: form-data; name="blob"\r\n\r\nsealed\r\n--b0und--\r\n'

    def post(data: object, content_type: str) -> requests.Response:
        return requests.post(f"{url}/upload_blob", params=_auth(PACK), data=data,
                             headers={"Content-Type": content_type}, timeout=5)

    ok = post(body, 'multipart/form-data; boundary="b0und"')  # quoted, as aiohttp writes it
    assert ok.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", ok.text)
    for data, content_type, reason in (
        (body, "multipart/form-data", "multipart boundary missing"),
        (body, "application/octet-stream", "expected multipart/form-data"),
        (body[:-12], "multipart/form-data; boundary=b0und", "multipart body not terminated"),
        (body.replace(b"\r\n\r\n", b"\n\n"), "multipart/form-data; boundary=b0und", "malformed multipart body"),
        (body.replace(b'"blob"', b'"blub"'), "multipart/form-data; boundary=b0und", "multipart field 'blob' missing"),
    ):
        response = post(data, content_type)
        assert (response.status_code, response.text) == (400, reason)


def test_a_chunked_upload_is_refused_413_once_past_the_limit(served: tuple[Gateway, str]) -> None:
    _, url = served

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        yield b'--b0und\r\nContent-Disposition: form-data; name="blob"\r\n\r\n'
        for _ in range(200):
            yield b"x" * 4096

    response = requests.post(f"{url}/upload_blob", params=_auth(PACK), data=chunks(),
                             headers={"Content-Type": "multipart/form-data; boundary=b0und"}, timeout=5)
    assert response.status_code == 413 and response.text == "request body over the limit"


def test_errors_are_short_plain_text(served: tuple[Gateway, str]) -> None:
    _, url = served
    for response in (
        requests.get(f"{url}/credits", timeout=5),
        requests.get(f"{url}/no/such/route", timeout=5),
        requests.get(f"{url}/send_e2e", timeout=5),
    ):
        assert response.status_code in (401, 404, 405)
        assert len(response.text) < 100 and "Traceback" not in response.text


def test_gateway_client_speaks_the_api(served: tuple[Gateway, str]) -> None:
    gateway, url = served
    client = GatewayClient(url, PACK.identity, PACK.secret)
    key = client.public_key("*ORBEDGE")
    assert key is not None and bytes(key) == bytes(EDGE.keys.public)
    assert client.public_key("*NOBODY1") is None
    assert "file" in client.capabilities("*ORBEDGE")
    blob_id = client.upload_blob(b"sealed")
    assert GatewayClient(url, EDGE.identity, EDGE.secret).download_blob(blob_id) == b"sealed"
    message_id = client.send_e2e("*ORBEDGE", seal(0x01, b"x", PACK.keys.private, key))
    assert gateway.message_status(message_id).to_id == "*ORBEDGE"
    with pytest.raises(GatewayHTTPError) as info:
        GatewayClient(url, PACK.identity, "wrong").credits()
    assert info.value.status == 401


def test_a_client_over_its_request_rate_gets_429(tmp_path: Path) -> None:
    gateway = make_gateway(tmp_path, [PACK.config()], rate_per_client=1, burst_per_client=3)
    with ServerThread(build_gateway_app(gateway)) as server:
        statuses = [requests.get(f"{server.url}/credits", params=_auth(PACK), timeout=5).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
