"""ThreemaPackager, one per feed: checks the digest of each part and segment, catalogs and
certifies every segment, seals each once as a Threema file blob and sends one small E2E file
message per recipient (the delivery edge among them).

One per feed so that packaging grows with the feeds and no feed waits behind another. It holds
the sender's private key and recipients' public keys, never a recipient's private key. Nothing
it stores is plaintext media: the blobs at rest are ciphertext.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque

import ray
import requests
from nacl.public import PublicKey

from orbitcast.catalog import Catalog
from orbitcast.config import OrbitcastConfig
from orbitcast.gateway.client import GatewayAPI, GatewayClient, GatewayHTTPError
from orbitcast.gateway.errors import GatewayRefusal
from orbitcast.ledger.leaf import LeafFields
from orbitcast.sealed_delivery import SealingPlan, init_meta, meta_of, part_meta, recipients_for
from orbitcast.sealing.blobs import SegmentMeta
from orbitcast.sealing.sealer import SegmentSealer
from orbitcast.segment import Part, Segment
from orbitcast.store import Store

from .gateway import ActorGatewayClient

log = logging.getLogger(__name__)
GATEWAY_WAIT_S = 60.0  # at start the gateway app may still be deploying


def packager_name(feed: str) -> str:
    return f"orbitcast-packager-{feed}"


def gateway_client(plan: SealingPlan, identity: str, secret: str,
                   gateway: "ray.actor.ActorHandle | None") -> GatewayAPI:
    """The embedded gateway by actor calls; a remote (real) one over its HTTP API."""
    if gateway is not None:
        return ActorGatewayClient(gateway, identity, secret)
    return GatewayClient(plan.gateway_url, identity, secret)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Packager:
    def __init__(self, config: OrbitcastConfig, feed: str, plan: SealingPlan,
                 ledger: "ray.actor.ActorHandle | None" = None, gateway: "ray.actor.ActorHandle | None" = None) -> None:
        assert plan.sender_keys is not None and plan.edge_keys is None, "the packager holds the sender key only"
        self.config = config
        self.feed = feed
        self.store = Store(config.store)
        self.catalog = Catalog(self.store, flush_every=len(config.ladder.rungs) * 5)
        self.ledger = ledger
        self.sealer = SegmentSealer(plan.sender_keys, max_blob_bytes=config.threema.max_blob_bytes)
        self.client = gateway_client(plan, plan.sender, plan.sender_secret, gateway)
        self.edge = plan.edge
        self._edge_public: PublicKey | None = None  # asked of the gateway on first use
        self.counters: Counter[str] = Counter()
        self.message_ids: deque[tuple[str, int, str, str]] = deque(maxlen=10_000)  # (feed/rendition, seq, to, id)
        self.seal_seconds: deque[float] = deque(maxlen=1000)

    def _edge_key(self) -> PublicKey:
        """The edge's key from the gateway; waits for the gateway while it is still starting."""
        deadline = time.monotonic() + GATEWAY_WAIT_S
        while self._edge_public is None:
            try:
                self._edge_public = self.client.public_key(self.edge)
            except (GatewayHTTPError, GatewayRefusal, requests.RequestException, ray.exceptions.RayError):
                pass
            if self._edge_public is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway does not know the edge {self.edge}")
                time.sleep(0.2)
        return self._edge_public

    def publish(self, inits: dict[str, bytes], items: list[Part | Segment]) -> int:
        """Inits, then parts and segments in the order the transcoder cut them."""
        for rendition, init in inits.items():
            self._send(init, init_meta(self.feed, rendition, init))
        for item in items:
            item.verified()  # hand-off check: transcoder -> packager
            if isinstance(item, Part):
                # Parts are read once by the edge: kept in the embedded gateway's memory only
                # (a remote gateway keeps every blob as it does).
                self._send(item.data, part_meta(item), transient=True)
            else:
                self._segment(item)
        return len(items)

    def _segment(self, seg: Segment) -> None:
        self.catalog.add(seg)
        if self.ledger is not None:
            # Certified before sent: the ledger signs a head covering the segment before the
            # edge can list it, so every listed segment has a proof. It needs the digest only.
            ray.get(self.ledger.append.remote([LeafFields.from_segment(seg)]))
        self._send(seg.data, meta_of(seg))

    def _send(self, data: bytes, meta: SegmentMeta, transient: bool = False) -> None:
        started = time.perf_counter()
        recipients = recipients_for(self.config, self._edge_key(), meta.feed, meta.rendition, meta.kind)

        def upload(blob: bytes) -> str:
            return self.client.upload_blob(blob, transient=transient)

        sealed = self.sealer.seal_segment(data, meta, recipients, upload)
        for out in sealed.outgoing:
            try:
                message_id = self.client.send_e2e(out.to_id, out.envelope)
            except (GatewayHTTPError, GatewayRefusal) as err:
                # One recipient's refusal (full queue, no credits) must not stop the others.
                self.counters[f"refused_{err.status}"] += 1
                log.warning("gateway refused %s/%s/%s for %s: %s", meta.feed, meta.rendition, meta.seq, out.to_id, err)
                continue
            self.counters["sent"] += 1
            self.message_ids.append((f"{meta.feed}/{meta.rendition}", meta.seq, out.to_id, message_id))
        self.seal_seconds.append(time.perf_counter() - started)

    def flush(self) -> None:
        self.catalog.flush()

    def catalog_rows(self) -> list[dict]:
        self.catalog.flush()
        return self.catalog.read().to_pylist()

    def stats(self) -> dict:
        return {"counters": dict(self.counters), "seal_seconds": list(self.seal_seconds), "sent": list(self.message_ids)}
