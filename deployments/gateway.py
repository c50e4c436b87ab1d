"""The embedded Threema Gateway's HTTP API on Ray Serve, at /threema, for clients outside the
cluster (the official SDK, subscribers, `orbitcast receive`). Thin: every call goes to the one
`GatewayActor`, which holds the queues, credits and blobs that actors inside the cluster reach
directly."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray
from ray import serve

APP_NAME = "threema"
ROUTE_PREFIX = "/threema"
STATUS_TTL_S = 1.0  # /api/feeds may be polled by every viewer page: ask the gateway once a second
STATUS_TIMEOUT_S = 1.0


class RemoteGateway:
    """`GatewayFront` over actor calls (orbitcast.gateway.front); refusals come back as
    themselves, so the HTTP app answers them with Threema's status codes."""

    def __init__(self, actor: "ray.actor.ActorHandle") -> None:
        self.actor = actor
        self.config = ray.get(actor.config.remote())

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from orbitcast.gateway.errors import GatewayRefusal

        try:
            return ray.get(self.actor.gateway_call.remote(method, *args, **kwargs))
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, GatewayRefusal):
                raise err.cause from None
            raise

    def authenticate(self, identity: str | None, secret: str | None) -> str:
        return self._call("authenticate", identity, secret)

    def public_key_hex(self, target: str) -> str:
        return self._call("public_key_hex", target)

    def lookup(self, kind: str, value: str) -> str:
        return self._call("lookup", kind, value)

    def capabilities(self, target: str) -> list[str]:
        return self._call("capabilities", target)

    def credits(self, identity: str) -> int:
        return self._call("credits", identity)

    def send_simple(self, sender: str) -> str:
        return self._call("send_simple", sender)

    def send_e2e(self, sender: str, to: str | None, nonce_hex: str | None, box_hex: str | None, *,
                 no_delivery_receipts: bool = False) -> str:
        return self._call("send_e2e", sender, to, nonce_hex, box_hex, no_delivery_receipts=no_delivery_receipts)

    def upload_blob(self, sender: str, data: bytes) -> str:
        return self._call("upload_blob", sender, data)

    def download_blob(self, blob_id: str) -> bytes:
        return self._call("download_blob", blob_id)


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress()
class ThreemaGateway:
    def __init__(self, actor: "ray.actor.ActorHandle") -> None:
        self.front = RemoteGateway(actor)

    def __serve_build_asgi_app__(self):
        from orbitcast.gateway.http import build_gateway_app

        return build_gateway_app(self.front)

    async def delivery_status(self) -> dict:
        """For other Serve apps, through a handle: the actor's queues and dead letters."""
        return await self.front.actor.delivery_status.remote()


class GatewayHealth:
    """The embedded gateway's `delivery_status()` for the Delivery app's /api/feeds, asked of
    this app through a Serve handle (the Delivery app holds no handle on the gateway actor),
    at most once per STATUS_TTL_S. While the app is not up, or does not answer in time:
    `{"error": ...}`."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._cached: dict | None = None
        self._at = 0.0

    async def status(self) -> dict:
        now = time.monotonic()
        if self._cached is not None and now - self._at < STATUS_TTL_S:
            return self._cached
        try:
            if self._handle is None:  # asks the Serve controller: off the event loop
                self._handle = await asyncio.to_thread(serve.get_app_handle, APP_NAME)
            status = await asyncio.wait_for(self._handle.delivery_status.remote(), STATUS_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - still deploying, restarting, or away
            return {"error": "gateway status unavailable"}
        self._cached, self._at = status, now
        return status


def build_app(actor: "ray.actor.ActorHandle"):
    return ThreemaGateway.bind(actor)
