"""Reading a request body within a size limit, for every Threema HTTP front (the gateway's API,
the recipient's callback app, the delivery app's callback routes).

A declared Content-Length over the limit is refused before a byte is read; a body that runs
past the limit (chunked, or lying about its length) is refused at the chunk that crosses it, so
no more than the limit and one chunk is ever held. Callers choose the answer: the gateway API
413, a callback 400 (Threema's recipients answer every refusal with 400).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request


class BodyRefused(ValueError):
    """The body was not read: its Content-Length is not a number."""


class BodyTooLarge(BodyRefused):
    """The body is, or says it is, over the limit."""


async def stream_bounded(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, for a reader that keeps less than the whole body (the
    multipart upload keeps its blob field only)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()  # some HTTP parsers hand on trailing whitespace
        if not declared.isascii() or not declared.isdigit():
            raise BodyRefused("Content-Length is not a number")
        if int(declared) > limit:
            raise BodyTooLarge("request body over the limit")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge("request body over the limit")
        if chunk:
            yield chunk


async def read_bounded(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in stream_bounded(request, limit)])
