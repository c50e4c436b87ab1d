"""The embedded Threema Gateway on Ray Serve, at /threema: the HTTP API of the spec over one
`Gateway` (its queues, credits and replay memory live in this one replica; blobs persist
through pyarrow.fs), with callback delivery running beside it."""

from __future__ import annotations

from ray import serve

from orbitcast.gateway.config import GatewayConfig

APP_NAME = "threema"
ROUTE_PREFIX = "/threema"


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress()
class ThreemaGateway:
    def __init__(self, config: GatewayConfig) -> None:
        from orbitcast.gateway.core import Gateway

        self.gateway = Gateway(config)
        self.gateway.start_delivery()

    def __serve_build_asgi_app__(self):
        from orbitcast.gateway.http import build_gateway_app

        return build_gateway_app(self.gateway)

    def __del__(self) -> None:
        self.gateway.stop_delivery()


def build_app(config: GatewayConfig):
    return ThreemaGateway.bind(config)
