"""Request bodies read within a limit: refused before reading when Content-Length says too much,
at the chunk that crosses the limit otherwise; over HTTP a callback answers 400, the gateway 413."""

from __future__ import annotations

import asyncio

import pytest
import requests
from starlette.requests import Request

from orbitcast.gateway.bounded_body import BodyRefused, BodyTooLarge, read_bounded
from orbitcast.gateway.callback_app import build_callback_app
from orbitcast.sealing.callback import MAX_CALLBACK_BYTES, build_callback_fields, encode_callback
from orbitcast.sealing.receiver import Received, Receiver
from orbitcast.sealing.sealer import SegmentSealer

try:
    from tests.unit.gateway_fixtures import ServerThread, new_account
except ImportError:
    from gateway_fixtures import ServerThread, new_account  # type: ignore[no-redef]


class Upload:
    """A request whose body arrives in `chunks`; `taken` counts the chunks the server read."""

    def __init__(self, chunks: list[bytes], content_length: str | None = None) -> None:
        self.chunks = list(chunks)
        self.taken = 0
        headers = [] if content_length is None else [(b"content-length", content_length.encode("latin-1"))]
        scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": headers}
        self.request = Request(scope, self._receive)

    async def _receive(self) -> dict:
        self.taken += 1
        chunk = self.chunks.pop(0) if self.chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    def read(self, limit: int) -> bytes:
        return asyncio.run(read_bounded(self.request, limit))


def test_a_body_within_the_limit_is_read_whole() -> None:
    assert Upload([b"ab", b"cd", b"ef"], "6").read(6) == b"abcdef"
    assert Upload([b"ab", b"cd"]).read(4) == b"abcd"  # no Content-Length (chunked)


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read() -> None:
    upload = Upload([b"x" * 100], "100")
    with pytest.raises(BodyTooLarge):
        upload.read(99)
    assert upload.taken == 0


def test_a_body_running_past_the_limit_is_refused_at_the_chunk_that_crosses_it() -> None:
    upload = Upload([b"x" * 40] * 10)  # chunked: 400 bytes, no length declared
    with pytest.raises(BodyTooLarge):
        upload.read(100)
    assert upload.taken == 3  # 120 bytes seen, the other 280 never read
    lying = Upload([b"x" * 40] * 10, "40")
    with pytest.raises(BodyTooLarge):
        lying.read(100)


@pytest.mark.parametrize("declared", ["abc", "-1", "1e3", "", "\u00b2"])  # "\u00b2" (²) passes str.isdigit
def test_a_content_length_that_is_no_number_is_refused_but_not_as_too_large(declared: str) -> None:
    with pytest.raises(BodyRefused) as info:
        Upload([b"x"], declared).read(100)
    assert not isinstance(info.value, BodyTooLarge)


def test_whitespace_around_the_content_length_is_allowed() -> None:
    assert Upload([b"hello"], "5 ").read(100) == b"hello"


def test_the_callback_app_answers_400_to_a_callback_over_16384_bytes_without_opening_it() -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    receiver = Receiver(edge.identity, edge.keys, edge.secret, {"*ORBPACK": pack.keys.public}.get)
    got: list[Received] = []
    envelope = SegmentSealer(pack.keys).seal_text("*ORBEDGE", edge.keys.public, "hello")
    fields = build_callback_fields(edge.secret, from_id="*ORBPACK", to_id="*ORBEDGE", message_id="01" * 8,
                                   date=1700000000, nonce_hex=envelope.nonce_hex, box_hex=envelope.box_hex)
    body = encode_callback(fields)
    padded = body + b"&pad=" + b"x" * (MAX_CALLBACK_BYTES - len(body))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with ServerThread(build_callback_app(receiver, got.append)) as server:
        too_large = requests.post(server.url + "/callback", data=padded, headers=headers, timeout=10)
        chunked = requests.post(server.url + "/callback", data=iter([padded]), headers=headers, timeout=10)
        ok = requests.post(server.url + "/callback", data=body, headers=headers, timeout=10)
    assert (too_large.status_code, too_large.content) == (400, b"")
    assert (chunked.status_code, chunked.content) == (400, b"")
    assert receiver.counters["bad_callback"] == 0  # refused before the receiver saw it
    assert ok.status_code == 200 and [r.message_id for r in got] == ["01" * 8]
