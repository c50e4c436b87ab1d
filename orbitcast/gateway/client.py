"""Clients of the Threema Gateway API: over HTTP (`requests`) or in-process.

Both speak the same small interface (`GatewayAPI`), so the packager and the edge run
unchanged against the real gateway (`https://msgapi.threema.ch`), the embedded one over
HTTP at `/threema`, or a `Gateway` object in the same process.
"""

from __future__ import annotations

from typing import Protocol, Sequence
from urllib.parse import quote

import requests
from nacl.public import PublicKey

from orbitcast.sealing.envelope import SealedEnvelope
from orbitcast.sealing.keys import public_key_from_hex

from .core import Gateway
from .errors import GatewayRefusal, NotFound

THREEMA_URL = "https://msgapi.threema.ch"


class GatewayHTTPError(Exception):
    def __init__(self, status: int, endpoint: str) -> None:
        super().__init__(f"gateway answered {status} for {endpoint}")
        self.status = status
        self.endpoint = endpoint


class GatewayAPI(Protocol):
    identity: str

    def public_key(self, identity: str) -> PublicKey | None: ...
    def capabilities(self, identity: str) -> list[str]: ...
    def credits(self) -> int: ...
    def send_e2e(self, to_id: str, envelope: SealedEnvelope, *, no_delivery_receipts: bool = False) -> str: ...
    def upload_blob(self, data: bytes, *, transient: bool = False) -> str: ...
    def download_blob(self, blob_id: str) -> bytes: ...


def upload_blobs(api: GatewayAPI, blobs: Sequence[bytes], *, transient: bool = False) -> list[str]:
    """Several blobs' ids, in order: in one round trip where the client has one for it (the
    cluster's actor transport), one upload each otherwise (the HTTP API has no batch)."""
    many = getattr(api, "upload_blobs", None)
    if many is not None:
        return list(many(blobs, transient=transient))
    return [api.upload_blob(blob, transient=transient) for blob in blobs]


def send_e2e_many(api: GatewayAPI, sends: Sequence[tuple[str, SealedEnvelope]]
                  ) -> list[str | GatewayRefusal | GatewayHTTPError]:
    """Each message's id, or the refusal it got (one recipient's full queue must not stop the
    others), in order; in one round trip where the client has one for it."""
    many = getattr(api, "send_e2e_many", None)
    if many is not None:
        return list(many(sends))
    out: list[str | GatewayRefusal | GatewayHTTPError] = []
    for to_id, envelope in sends:
        try:
            out.append(api.send_e2e(to_id, envelope))
        except (GatewayHTTPError, GatewayRefusal) as err:
            out.append(err)
    return out


class GatewayClient:
    """HTTP client with Threema's conventions (credentials in query or form, 200 = success)."""

    def __init__(
        self,
        base_url: str,
        identity: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.identity = identity
        self._secret = secret
        self._timeout = timeout_s
        self._session = session or requests.Session()
        self._keys: dict[str, PublicKey] = {}

    def _auth(self) -> dict[str, str]:
        return {"from": self.identity, "secret": self._secret}

    def _get(self, path: str) -> requests.Response:
        response = self._session.get(self.base_url + path, params=self._auth(), timeout=self._timeout)
        if response.status_code != 200:
            raise GatewayHTTPError(response.status_code, path.split("/")[1])
        return response

    def public_key(self, identity: str) -> PublicKey | None:
        """Sender/recipient key from GET /pubkeys (cached; None when the gateway says 404)."""
        cached = self._keys.get(identity)
        if cached is not None:
            return cached
        try:
            key = public_key_from_hex(self._get(f"/pubkeys/{quote(identity, safe='*')}").text)
        except GatewayHTTPError as exc:
            if exc.status == 404:
                return None
            raise
        self._keys[identity] = key
        return key

    def capabilities(self, identity: str) -> list[str]:
        return [c.strip() for c in self._get(f"/capabilities/{quote(identity, safe='*')}").text.split(",") if c.strip()]

    def credits(self) -> int:
        return int(self._get("/credits").text)

    def send_e2e(self, to_id: str, envelope: SealedEnvelope, *, no_delivery_receipts: bool = False) -> str:
        form = dict(self._auth(), to=to_id, nonce=envelope.nonce_hex, box=envelope.box_hex)
        if no_delivery_receipts:
            form["noDeliveryReceipts"] = "1"
        response = self._session.post(self.base_url + "/send_e2e", data=form, timeout=self._timeout)
        if response.status_code != 200:
            raise GatewayHTTPError(response.status_code, "send_e2e")
        return response.text.strip()

    def upload_blob(self, data: bytes, *, transient: bool = False) -> str:
        # Threema's HTTP API has no transient blobs: over HTTP every blob is kept as uploaded.
        response = self._session.post(
            self.base_url + "/upload_blob",
            params=self._auth(),
            files={"blob": ("blob", data, "application/octet-stream")},
            timeout=self._timeout,
        )
        if response.status_code != 200:
            raise GatewayHTTPError(response.status_code, "upload_blob")
        return response.text.strip()

    def download_blob(self, blob_id: str) -> bytes:
        return self._get(f"/blobs/{quote(blob_id, safe='')}").content


class LocalGatewayClient:
    """The same interface straight onto a `Gateway` in this process (no HTTP hop)."""

    def __init__(self, gateway: Gateway, identity: str, secret: str) -> None:
        self._gateway = gateway
        self.identity = identity
        self._secret = secret

    def _sender(self) -> str:
        return self._gateway.authenticate(self.identity, self._secret)

    def public_key(self, identity: str) -> PublicKey | None:
        self._sender()
        try:
            return public_key_from_hex(self._gateway.public_key_hex(identity))
        except NotFound:
            return None

    def capabilities(self, identity: str) -> list[str]:
        self._sender()
        return self._gateway.capabilities(identity)

    def credits(self) -> int:
        return self._gateway.credits(self._sender())

    def send_e2e(self, to_id: str, envelope: SealedEnvelope, *, no_delivery_receipts: bool = False) -> str:
        return self._gateway.send_e2e(
            self._sender(), to_id, envelope.nonce_hex, envelope.box_hex, no_delivery_receipts=no_delivery_receipts
        )

    def upload_blob(self, data: bytes, *, transient: bool = False) -> str:
        return self._gateway.upload_blob(self._sender(), data, transient=transient)

    def download_blob(self, blob_id: str) -> bytes:
        self._sender()
        return self._gateway.download_blob(blob_id)


__all__ = ["GatewayAPI", "GatewayClient", "GatewayHTTPError", "GatewayRefusal", "LocalGatewayClient", "THREEMA_URL"]
