"""The ledger's HTTP routes on Ray Serve, a separate application on route prefix `/ledger`:

    GET /ledger/pubkey
    GET /ledger/{feed}/sth
    GET /ledger/{feed}/proof/{rendition}/{seq}[?tree_size=N]
    GET /ledger/{feed}/consistency?first=N&second=M
    GET /ledger/{feed}/entries?start=N&end=M

A shim: the answer (status, JSON, cache headers) comes from `LedgerActor.route`, i.e. from
`orbitcast.ledger.http_shapes.route`. Errors are short JSON bodies, never a stack trace.
"""

from __future__ import annotations

import logging

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orbitcast.delivery import http_policy

log = logging.getLogger(__name__)

APP_NAME = "ledger"
ROUTE_PREFIX = "/ledger"
MAX_URL = 512  # the longest valid ledger URL is ~150 characters


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=http_policy.no_store())


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
class LedgerHTTP:
    def __init__(self, ledger) -> None:  # ledger: the LedgerActor handle
        self.ledger = ledger

    async def __call__(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=http_policy.no_store())
        if request.method not in ("GET", "HEAD"):
            return _error(405, "method not allowed")
        path = request.url.path
        if len(path) + len(request.url.query) > MAX_URL:
            return _error(414, "URL too long")
        # Serve keeps the full path (the prefix goes to root_path); the router strips `/ledger`.
        query = dict(request.query_params)
        try:
            status, body, headers = await self.ledger.route.remote(path, query)
        except Exception:  # noqa: BLE001 - the client gets a short answer; the log keeps why
            log.exception("ledger route %s failed", path)
            return _error(503, "ledger unavailable")
        return JSONResponse(body, status_code=status, headers={**http_policy.CORS, **headers})


def build_app(ledger):
    """The bound Serve application for `serve.run(..., name=APP_NAME, route_prefix=ROUTE_PREFIX)`."""
    return LedgerHTTP.bind(ledger)
