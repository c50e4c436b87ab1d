"""The Threema Gateway HTTP API as an ASGI app (FastAPI), over a `Gateway`.

Routes are relative, so the app can be mounted under `/threema` (a Serve deployment with
`@serve.ingress(build_gateway_app(gateway))`, or `app.mount("/threema", ...)`). Answers are
Threema's: bare text bodies on 200, the status code with a short reason on refusal, never
a stack trace.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, TypeVar
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from orbitcast.ratelimit import TokenBuckets

from .bounded_body import BodyRefused, BodyTooLarge, read_bounded, stream_bounded
from .core import Gateway
from .front import GatewayFront
from .errors import BadRequest, GatewayRefusal, TooLarge
from .multipart import FormReader

log = logging.getLogger(__name__)
T = TypeVar("T")

MULTIPART_OVERHEAD = 64 * 1024  # headers and boundaries around the blob
FORM_OVERHEAD = 4096  # from, secret, to, nonce, flags around the box


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it exceeds `limit` (400 for a Content-Length that is no number)."""
    try:
        return await read_bounded(request, limit)
    except BodyTooLarge as exc:
        raise TooLarge(str(exc)) from None
    except BodyRefused as exc:
        raise BadRequest(str(exc)) from None


async def _multipart_field(request: Request, name: str, limit: int) -> bytes:
    """One field of a multipart/form-data body, parsed as the body arrives (python-multipart):
    only that field is held; 400 for a malformed body or a missing field, 413 past `limit`."""
    reader = FormReader(request.headers.get("content-type", ""), {name})  # 400 before reading
    try:
        async for chunk in stream_bounded(request, limit):
            reader.feed(chunk)
    except BodyTooLarge as exc:
        raise TooLarge(str(exc)) from None
    except BodyRefused as exc:
        raise BadRequest(str(exc)) from None
    fields = reader.finish()
    if name not in fields:
        raise BadRequest(f"multipart field '{name}' missing")
    return fields[name]


async def _form(request: Request, limit: int) -> dict[str, str]:
    raw = await _read_limited(request, limit)
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("form is not urlencoded UTF-8") from exc


def _text(value: str) -> PlainTextResponse:
    return PlainTextResponse(value)


def build_gateway_app(gateway: "Gateway | GatewayFront") -> FastAPI:
    app = FastAPI(title="orbitcast Threema gateway", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway
    limits = TokenBuckets(gateway.config.rate_per_client, gateway.config.burst_per_client)

    @app.middleware("http")
    async def _rate_limit(request: Request, call_next: Callable) -> Response:
        if not limits.allow(request.client.host if request.client else ""):
            return PlainTextResponse("too many requests", status_code=429, headers={"Retry-After": "1"})
        return await call_next(request)

    @app.exception_handler(GatewayRefusal)
    async def _refusal(_: Request, exc: GatewayRefusal) -> Response:
        return PlainTextResponse(exc.reason, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("gateway request failed")
        return PlainTextResponse("internal error", status_code=500)

    async def blocking(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        # Blob IO may hit a remote filesystem, and the gateway may be an actor elsewhere in the
        # cluster: keep every call off the event loop.
        return await run_in_threadpool(fn, *args, **kwargs)

    async def auth_query(request: Request) -> str:
        return await blocking(gateway.authenticate, request.query_params.get("from"), request.query_params.get("secret"))

    @app.get("/pubkeys/{identity}")
    async def pubkeys(identity: str, request: Request) -> Response:
        await auth_query(request)
        return _text(await blocking(gateway.public_key_hex, identity))

    @app.get("/lookup/{kind}/{value}")
    async def lookup(kind: str, value: str, request: Request) -> Response:
        await auth_query(request)
        return _text(await blocking(gateway.lookup, kind, value))

    @app.get("/capabilities/{identity}")
    async def capabilities(identity: str, request: Request) -> Response:
        await auth_query(request)
        return _text(",".join(await blocking(gateway.capabilities, identity)))

    @app.get("/credits")
    async def credits(request: Request) -> Response:
        return _text(str(await blocking(gateway.credits, await auth_query(request))))

    @app.post("/send_simple")
    async def send_simple(request: Request) -> Response:
        form = await _form(request, FORM_OVERHEAD + 16384)
        sender = await blocking(gateway.authenticate, form.get("from"), form.get("secret"))
        return _text(await blocking(gateway.send_simple, sender))

    @app.post("/send_e2e")
    async def send_e2e(request: Request) -> Response:
        form = await _form(request, FORM_OVERHEAD + 2 * gateway.config.max_box_bytes + 64)
        sender = await blocking(gateway.authenticate, form.get("from"), form.get("secret"))
        message_id = await blocking(
            gateway.send_e2e,
            sender,
            form.get("to"),
            form.get("nonce"),
            form.get("box"),
            no_delivery_receipts=form.get("noDeliveryReceipts") in ("1", "true"),
        )
        return _text(message_id)

    @app.post("/upload_blob")
    async def upload_blob(request: Request) -> Response:
        sender = await auth_query(request)  # before reading the body: no upload without credentials
        blob = await _multipart_field(request, "blob", gateway.config.max_blob_bytes + MULTIPART_OVERHEAD)
        return _text(await blocking(gateway.upload_blob, sender, blob))

    @app.get("/blobs/{blob_id}")
    async def blobs(blob_id: str, request: Request) -> Response:
        await auth_query(request)
        data = await blocking(gateway.download_blob, blob_id)
        return Response(data, media_type="application/octet-stream")

    return app
