"""The recipient's side of the callback, as an ASGI app over a `Receiver`.

Answers as the SDK's callback does: 200 with an empty body on acceptance, 400 with an empty
body on any refusal (no reason leaks to the sender). A replay answers 200 without handing
the message on again: the gateway retries until it sees 200, so a lost 200 must not turn
into a duplicate segment.
"""

from __future__ import annotations

import logging
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from orbitcast.sealing.callback import MAX_CALLBACK_BYTES
from orbitcast.sealing.errors import ReplayedMessage, SealingError
from orbitcast.sealing.receiver import Received, Receiver

log = logging.getLogger(__name__)

ReceivedHandler = Callable[[Received], None]


def build_callback_app(
    receiver: Receiver, on_received: ReceivedHandler | None = None, *, path: str = "/callback"
) -> FastAPI:
    app = FastAPI(title="orbitcast Threema callback", docs_url=None, redoc_url=None, openapi_url=None)

    def handle(raw: bytes) -> int:
        try:
            received = receiver.handle_body(raw)
        except ReplayedMessage:
            return 200
        except SealingError as exc:
            log.info("callback refused: %s", exc.code)
            return 400
        except Exception:  # a blob fetch that failed: 500 so the gateway retries later
            log.exception("callback processing failed")
            return 500
        if on_received is not None:
            on_received(received)
        return 200

    @app.post(path)
    async def callback(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES:
            return Response(status_code=400)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_CALLBACK_BYTES:
                return Response(status_code=400)
        # Opening may fetch blobs over HTTP: run it on a worker thread, not the event loop.
        return Response(status_code=await run_in_threadpool(handle, raw))

    return app
