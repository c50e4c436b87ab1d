"""The embedded Threema Gateway's place in the cluster: one actor holding `Gateway` (accounts,
credits, per-recipient queues, blobs) and its callback delivery.

Inside the cluster the packager and the edge reach it with actor calls (`ActorGatewayClient`),
and it hands a recipient that lives in the cluster its callbacks with an actor call too, in
batches: the same Threema messages, blobs and MAC'd callback bodies as over HTTP, without four
trips through an HTTP proxy per part. Outside clients (the official SDK, `orbitcast receive`,
subscribers elsewhere) use the HTTP API at /threema, which the Serve app forwards here.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Sequence

import ray
from nacl.public import PublicKey

from orbitcast.gateway.client import LocalGatewayClient
from orbitcast.gateway.config import GatewayConfig
from orbitcast.gateway.core import Gateway
from orbitcast.gateway.delivery import RequestsPoster
from orbitcast.gateway.errors import BadRequest, GatewayRefusal
from orbitcast.sealing.envelope import SealedEnvelope
from orbitcast.standby import NotHolding

log = logging.getLogger(__name__)
CALL_TIMEOUT_S = 10.0
WATCH_POLL_S = 0.05  # how often a callback call to a pair looks whether the other took over


class ActorPoster:
    """Delivers callbacks whose URL belongs to a recipient actor of this cluster by calling its
    `handle_callbacks(bodies) -> statuses`; every other URL over HTTP, as Threema does.

    A recipient may be a pair (the edge and its standby, actors/pair.py): the callbacks go to the
    one that holds, and the moment a call to it fails (it died) or is refused (`NotHolding`), to
    the other. Calls to a pair are not retried by Ray on the process it starts again: that takes
    a second, and the other takes over within milliseconds and says so (`now_holding`). A
    gateway started again tries the first and is refused by it if it stands by."""

    def __init__(self, actors: dict[str, "ray.actor.ActorHandle | list"], timeout_s: float,
                 names: dict[str, "str | list[str]"] | None = None) -> None:
        self.actors: dict[str, list] = {url: _as_list(a) for url, a in actors.items()}
        self.names = {url: _as_list(n) for url, n in (names or {}).items()}  # callback URL -> the recipients' names
        self.active: dict[str, int] = {}  # callback URL -> which of a pair takes them now
        self._lock = threading.Lock()
        self.http = RequestsPoster(timeout_s)
        self.timeout_s = timeout_s

    def update(self, recipients: dict[str, "ray.actor.ActorHandle | list"]) -> None:
        self.actors.update({url: _as_list(a) for url, a in recipients.items()})

    def _actors(self, url: str) -> list:
        actors = self.actors.get(url)
        if actors is None and url in self.names:
            try:
                actors = self.actors[url] = [ray.get_actor(name) for name in self.names[url]]
            except ValueError:  # not started yet: over HTTP meanwhile
                return []
        return actors or []

    def __call__(self, url: str, body: bytes) -> int:
        return self.post_many(url, [body])[0]

    def post_many(self, url: str, bodies: list[bytes]) -> list[int]:
        actors = self._actors(url)
        if not actors:
            out: list[int] = []
            for body in bodies:  # HTTP recipients: one POST each, each settled on its own
                try:
                    out.append(self.http(url, body))
                except Exception:  # noqa: BLE001 - no answer: the rest are not tried now
                    if not out:
                        raise
                    break
            return out
        if len(actors) == 1:
            return list(ray.get(actors[0].handle_callbacks.remote(bodies), timeout=self.timeout_s))
        deadline = time.monotonic() + self.timeout_s
        for attempt in range(len(actors) + 1):
            index = self.active.get(url, 0)
            call = actors[index].handle_callbacks.options(max_task_retries=0).remote(bodies)
            # A call made after the holder's death waits in Ray for the process it starts again
            # (a second): when the other says it holds now (`now_holding`), the callbacks go
            # there (the call left behind is refused by the one started again, which stands by).
            while not ray.wait([call], timeout=WATCH_POLL_S)[0]:
                if self.active.get(url, 0) != index:
                    break
                if time.monotonic() > deadline:
                    raise ray.exceptions.GetTimeoutError(f"no answer from {url} in {self.timeout_s} s")
            else:
                try:
                    return list(ray.get(call))
                except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as err:
                    if isinstance(err, ray.exceptions.RayTaskError) and not isinstance(err.cause, NotHolding):
                        raise
                    if attempt == len(actors):
                        raise
                    self._flip(url, index, len(actors))
        raise RuntimeError(f"no edge of {url} took the callbacks")

    def now_holding(self, name: str) -> None:
        for url, names in self.names.items():
            if name in names:
                with self._lock:
                    self.active[url] = names.index(name)

    def _flip(self, url: str, index: int, size: int) -> None:
        with self._lock:
            if self.active.get(url, 0) == index:
                self.active[url] = (index + 1) % size


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=64)
class GatewayActor:
    def __init__(self, config: GatewayConfig, routes: dict[str, str] | None = None) -> None:
        """`routes`: callback URLs whose recipient is a named actor of this cluster, and its
        name; a gateway that Ray starts again after a crash finds them by name."""
        self.gateway = Gateway(config)
        self.poster = ActorPoster({}, config.callback_timeout_s, routes)
        self.gateway.start_delivery(self.poster)

    def route(self, recipients: dict[str, "ray.actor.ActorHandle | list"]) -> None:
        """Callback URLs whose recipient is an actor of this cluster (or a pair), and that actor:
        those callbacks go by actor call (the same bodies, MAC and all) instead of over HTTP."""
        self.poster.update(recipients)

    def holder(self, name: str) -> None:
        """The actor `name` of a recipient pair took over (actors/pair.py): its callbacks go there
        now, without waiting for the call to the one that died to fail."""
        self.poster.now_holding(name)

    def call(self, identity: str, secret: str, method: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        """One Gateway API call as `identity` (authenticated with its secret, as over HTTP)."""
        if method not in _METHODS:
            raise BadRequest("unknown method")
        client = LocalGatewayClient(self.gateway, identity, secret)
        result = getattr(client, method)(*args, **kwargs)
        # Keys travel as bytes: PyNaCl's objects are not worth pickling across the cluster.
        return bytes(result) if isinstance(result, PublicKey) else result

    def call_many(self, identity: str, secret: str, method: str,
                  calls: list[tuple[tuple, dict[str, Any]]]) -> list[Any]:
        """Many calls of one method in one actor call (a packager's batch of parts): each
        result, or the refusal it got, in order; the same checks as `call` for each."""
        if method not in _BATCHED:
            raise BadRequest("unknown method")
        client = LocalGatewayClient(self.gateway, identity, secret)
        fn = getattr(client, method)
        out: list[Any] = []
        for args, kwargs in calls:
            try:
                out.append(fn(*args, **kwargs))
            except GatewayRefusal as err:
                out.append(err)
        return out

    def gateway_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The HTTP front's door: the `Gateway` methods its routes call (they authenticate)."""
        if method not in _HTTP_METHODS:
            raise BadRequest("unknown method")
        return getattr(self.gateway, method)(*args, **kwargs)

    def config(self) -> GatewayConfig:
        return self.gateway.config

    def delivery_status(self) -> dict:
        """Queues, dead letters, queue-full refusals and the alarm (the `gateway` object of
        /api/feeds)."""
        return self.gateway.delivery_status()

    def stop(self) -> None:
        self.gateway.close()


_METHODS = {"public_key", "capabilities", "credits", "send_e2e", "upload_blob", "download_blob"}
_BATCHED = {"send_e2e", "upload_blob"}
_HTTP_METHODS = {
    "authenticate", "public_key_hex", "lookup", "capabilities", "credits", "send_simple", "send_e2e",
    "upload_blob", "download_blob",
}


class ActorGatewayClient:
    """`GatewayAPI` over actor calls to `GatewayActor` (see orbitcast.gateway.client)."""

    def __init__(self, actor: "ray.actor.ActorHandle", identity: str, secret: str) -> None:
        self.actor = actor
        self.identity = identity
        self._secret = secret
        self._keys: dict[str, PublicKey] = {}

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return ray.get(self.actor.call.remote(self.identity, self._secret, method, args, kwargs), timeout=CALL_TIMEOUT_S)
        except ray.exceptions.RayTaskError as err:
            # A refusal is the gateway's answer (a status), not a crash: raise it as itself.
            if isinstance(err.cause, GatewayRefusal):
                raise err.cause from None
            raise

    def public_key(self, identity: str) -> PublicKey | None:
        cached = self._keys.get(identity)
        if cached is None:
            raw = self._call("public_key", identity)
            if raw is None:
                return None
            cached = self._keys[identity] = PublicKey(raw)
        return cached

    def capabilities(self, identity: str) -> list[str]:
        return self._call("capabilities", identity)

    def credits(self) -> int:
        return self._call("credits")

    def send_e2e(self, to_id: str, envelope: SealedEnvelope, *, no_delivery_receipts: bool = False) -> str:
        return self._call("send_e2e", to_id, envelope, no_delivery_receipts=no_delivery_receipts)

    def upload_blob(self, data: bytes, *, transient: bool = False) -> str:
        return self._call("upload_blob", data, transient=transient)

    def download_blob(self, blob_id: str) -> bytes:
        return self._call("download_blob", blob_id)

    def _call_many(self, method: str, calls: list[tuple[tuple, dict[str, Any]]]) -> list[Any]:
        return ray.get(self.actor.call_many.remote(self.identity, self._secret, method, calls),
                       timeout=CALL_TIMEOUT_S)

    def upload_blobs(self, blobs: Sequence[bytes], *, transient: bool = False) -> list[str]:
        out = self._call_many("upload_blob", [((blob,), {"transient": transient}) for blob in blobs])
        for result in out:
            if isinstance(result, GatewayRefusal):
                raise result
        return out

    def send_e2e_many(self, sends: Sequence[tuple[str, SealedEnvelope]]) -> list[Any]:
        return self._call_many("send_e2e", [((to_id, envelope), {}) for to_id, envelope in sends])
