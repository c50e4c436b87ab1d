"""Live requests answered by the replica's own HTTP server, ahead of Ray Serve's request wrapper.

With Serve's HAProxy ingress each Delivery replica runs an HTTP server of its own (direct
ingress), and Serve wraps every request it passes to the deployment: request metadata, a task
watching for the client to disconnect, queue and ongoing-request accounting, metrics. That
wrapper costs more than answering a live request from memory does (about four fifths of the
CPU time per request, py-spy in docs/benchmarks.md), and a part's arrival releases hundreds
of held requests at once.

Serve applies the Starlette middlewares that `RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH` names
to every HTTP server it starts (its proxies and the replicas' direct ingress), outside the
wrapper. `middlewares` below is that callback: in the process of a Delivery replica that has
called `serve_live_here`, requests under /live/ go straight to its `LiveHTTP`; everything else
(other paths, Serve's own proxies, replicas of other deployments) passes through untouched.

What /live/ requests then skip: Serve's request accounting, so they do not count towards the
deployment's ongoing requests (its autoscaling sees the other routes only; docs/delivery.md).
"""

from __future__ import annotations

import asyncio

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

LIVE_PREFIX = "/live/"

_live: ASGIApp | None = None
_loop: asyncio.AbstractEventLoop | None = None


def serve_live_here(app: ASGIApp) -> bool:
    """Make `app` answer /live/ in this process, from the running loop's servers; False (and
    Serve's path stays) when no loop runs here."""
    global _live, _loop
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    _live, _loop = app, loop
    return True


def stop_serving_live() -> None:
    global _live, _loop
    _live, _loop = None, None


class LiveFastPath:
    """Pure ASGI middleware: /live/ to this process's `LiveHTTP` when there is one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        live = _live
        # The live window's waiters belong to the replica's loop: only a server on that same
        # loop may answer from it (Serve runs user code on it when throughput-optimized).
        if (live is not None and scope["type"] == "http" and scope["path"].startswith(LIVE_PREFIX)
                and _loop is asyncio.get_running_loop()):
            await live(scope, receive, send)
            return
        await self.app(scope, receive, send)


def middlewares() -> list[Middleware]:
    """The `RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH` callback."""
    return [Middleware(LiveFastPath)]
