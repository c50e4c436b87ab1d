"""Shared helpers for the sealing/gateway tests: real servers on 127.0.0.1, real keys.

Imported explicitly by test modules (not a conftest), e.g.
`from tests.unit.gateway_fixtures import ServerThread, make_gateway`.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import uvicorn
from aiohttp import web

from orbitcast.gateway import BlobStore, Gateway, GatewayConfig, IdentityConfig
from orbitcast.sealing.keys import KeyPair, generate_key_pair


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServerThread:
    """Runs an ASGI app with uvicorn on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, app: Any) -> None:
        self._sock = _bound_socket()
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


class AsyncLoopThread:
    """An asyncio loop on a background thread, for the SDK's aiohttp server and clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "AsyncLoopThread":
        self._thread.start()
        return self

    def run(self, coro: Awaitable[Any], timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def start_aiohttp_site(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on 127.0.0.1:<free port> in the running loop; returns (runner, base URL)."""
    runner = web.AppRunner(app)
    await runner.setup()
    sock = _bound_socket()
    site = web.SockSite(runner, sock)
    await site.start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class Account:
    identity: str
    keys: KeyPair
    secret: str

    def config(self, **extra: Any) -> IdentityConfig:
        return IdentityConfig(identity=self.identity, secret=self.secret, public_key=self.keys.public_string, **extra)


def new_account(identity: str) -> Account:
    return Account(identity, generate_key_pair(), secrets.token_urlsafe(16))


def make_gateway(tmp_path: Path, accounts: list[IdentityConfig], **config: Any) -> Gateway:
    settings = GatewayConfig(identities=accounts, blob_store=str(tmp_path / "blobs"), **config)
    return Gateway(settings, blob_store=BlobStore.from_uri(settings.blob_store))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
