"""The recipient's side of the callback, as an ASGI app over a `Receiver`.

Answers as the SDK's callback does: 200 with an empty body on acceptance, 400 with an empty
body on any refusal (no reason leaks to the sender). A replay answers 200 without handing
the message on again: the gateway retries until it sees 200, so a lost 200 must not turn
into a duplicate segment.
"""

from __future__ import annotations

from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from orbitcast.sealing.callback import MAX_CALLBACK_BYTES
from orbitcast.sealing.receiver import Received, Receiver

from .bounded_body import BodyRefused, read_bounded

ReceivedHandler = Callable[[Received], None]


async def read_callback_body(request: Request) -> bytes | None:
    """A callback's body, or None when it must be refused (400): over Threema's 16384 bytes,
    or a Content-Length that is no number."""
    try:
        return await read_bounded(request, MAX_CALLBACK_BYTES)
    except BodyRefused:
        return None


def build_callback_app(
    receiver: Receiver, on_received: ReceivedHandler | None = None, *, path: str = "/callback"
) -> FastAPI:
    app = FastAPI(title="orbitcast Threema callback", docs_url=None, redoc_url=None, openapi_url=None)

    def handle(raw: bytes) -> int:
        status, received = receiver.answer_callback(raw)
        if received is not None and on_received is not None:
            on_received(received)
        return status

    @app.post(path)
    async def callback(request: Request) -> Response:
        raw = await read_callback_body(request)
        if raw is None:
            return Response(status_code=400)
        # Opening may fetch blobs over HTTP: run it on a worker thread, not the event loop.
        return Response(status_code=await run_in_threadpool(handle, raw))

    return app
