"""The fast path: /live/ answered by the replica's LiveHTTP ahead of Serve's wrapper, only in
the process (and on the loop) that registered one; everything else passes through."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from starlette.middleware import Middleware

from orbitcast.delivery import fast_path
from orbitcast.delivery.fast_path import LiveFastPath, middlewares, serve_live_here, stop_serving_live


def app_named(name: str, calls: list[str]):
    async def app(scope, receive, send) -> None:
        calls.append(name)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})
    return app


async def call(asgi, path: str, kind: str = "http") -> bytes:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await asgi({"type": kind, "path": path, "method": "GET", "query_string": b"", "headers": []}, receive, send)
    return b"".join(m.get("body", b"") for m in sent)


@pytest.fixture(autouse=True)
def nothing_registered() -> Iterator[None]:
    stop_serving_live()
    yield
    stop_serving_live()


def test_the_callback_gives_serve_one_starlette_middleware() -> None:
    (m,) = middlewares()
    assert isinstance(m, Middleware) and m.cls is LiveFastPath


def test_live_paths_go_to_the_registered_live_app_and_the_rest_to_serve() -> None:
    calls: list[str] = []

    async def scenario() -> list[bytes]:
        assert serve_live_here(app_named("live", calls))
        front = LiveFastPath(app_named("serve", calls))
        return [await call(front, p) for p in ("/live/iss/master.m3u8", "/api/feeds", "/live", "/-/healthz")]

    assert asyncio.run(scenario()) == [b"live", b"serve", b"serve", b"serve"]
    assert calls == ["live", "serve", "serve", "serve"]


def test_without_a_registered_replica_everything_passes_through() -> None:
    # Serve's own proxy and replicas of other deployments load the middleware too.
    calls: list[str] = []
    front = LiveFastPath(app_named("serve", calls))
    assert asyncio.run(call(front, "/live/iss/master.m3u8")) == b"serve"


def test_a_server_on_another_loop_leaves_live_to_serve() -> None:
    # The live window's waiters belong to the replica's loop; a server elsewhere must not use them.
    calls: list[str] = []

    async def register() -> None:
        serve_live_here(app_named("live", calls))

    asyncio.run(register())  # registered from a loop that is now gone
    front = LiveFastPath(app_named("serve", calls))
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(asyncio.run(call(front, "/live/iss/master.m3u8"))))
    t.start()
    t.join()
    assert got == [b"serve"] and calls == ["serve"]


def test_registering_outside_a_loop_changes_nothing() -> None:
    assert not serve_live_here(app_named("live", []))
    assert fast_path._live is None
