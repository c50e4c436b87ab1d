"""ThreemaPackager: checks each segment's digest, catalogs it, seals it once as a Threema file
blob and sends one small E2E file message per recipient (the delivery edge among them).

It holds the sender's private key and recipients' public keys, never a recipient's private key.
Nothing it stores is plaintext media: the blobs at rest are ciphertext.
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
from orbitcast.gateway.client import GatewayClient, GatewayHTTPError
from orbitcast.sealed_delivery import SealingPlan, init_meta, meta_of, recipients_for
from orbitcast.sealing.blobs import SegmentMeta
from orbitcast.sealing.errors import ReplayedMessage, SealingError
from orbitcast.sealing.messages import DeliveryReceipt
from orbitcast.sealing.receiver import Receiver
from orbitcast.sealing.sealer import SegmentSealer
from orbitcast.segment import Segment
from orbitcast.store import Store

log = logging.getLogger(__name__)
GATEWAY_WAIT_S = 60.0  # at start the gateway app may still be deploying


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Packager:
    def __init__(self, config: OrbitcastConfig, plan: SealingPlan, ledger: "ray.actor.ActorHandle | None" = None) -> None:
        assert plan.sender_keys is not None and plan.edge_keys is None, "the packager holds the sender key only"
        self.config = config
        self.store = Store(config.store)
        self.catalog = Catalog(self.store, flush_every=len(config.ladder.rungs) * 5)
        self.ledger = ledger
        self.sealer = SegmentSealer(plan.sender_keys, max_blob_bytes=config.threema.max_blob_bytes)
        self.client = GatewayClient(plan.gateway_url, plan.sender, plan.sender_secret)
        self.edge = plan.edge
        self._edge_public: PublicKey | None = None  # asked of the gateway on first use
        # Recipients' delivery receipts come back to the sender through the gateway.
        self.receiver = Receiver(plan.sender, plan.sender_keys, plan.sender_secret, self.client.public_key)
        self.delivered: dict[str, str] = {}  # message id -> recipient that confirmed it
        self.counters: Counter[str] = Counter()
        self.message_ids: deque[tuple[str, int, str, str]] = deque(maxlen=10_000)  # (feed/rendition, seq, to, id)
        self.seal_seconds: deque[float] = deque(maxlen=1000)

    def _edge_key(self) -> PublicKey:
        """The edge's key from the gateway; waits for the gateway while it is still deploying."""
        deadline = time.monotonic() + GATEWAY_WAIT_S
        while self._edge_public is None:
            try:
                self._edge_public = self.client.public_key(self.edge)
            except (GatewayHTTPError, requests.RequestException):
                pass
            if self._edge_public is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway at {self.client.base_url} does not know the edge {self.edge}")
                time.sleep(0.2)
        return self._edge_public

    def publish_init(self, feed: str, rendition: str, init: bytes) -> None:
        self._send(init, init_meta(feed, rendition, init))

    def package(self, segments: list[Segment]) -> int:
        for seg in segments:
            seg.verified()  # hand-off check: transcoder -> packager
            self.catalog.add(seg)
        if self.ledger is not None:
            # Certified before sent: the ledger signs a head covering these leaves before the
            # edge can list them, so every listed segment has a proof.
            ray.get(self.ledger.append.remote(segments))
        for seg in segments:
            self._send(seg.data, meta_of(seg))
        return len(segments)

    def _send(self, data: bytes, meta: SegmentMeta) -> None:
        started = time.perf_counter()
        recipients = recipients_for(self.config, self._edge_key(), meta.feed, meta.rendition)
        sealed = self.sealer.seal_segment(data, meta, recipients, self.client.upload_blob)
        for out in sealed.outgoing:
            try:
                message_id = self.client.send_e2e(out.to_id, out.envelope)
            except GatewayHTTPError as err:
                # One recipient's refusal (full queue, no credits) must not stop the others.
                self.counters[f"refused_{err.status}"] += 1
                log.warning("gateway refused %s/%s/%s for %s: %s", meta.feed, meta.rendition, meta.seq, out.to_id, err)
                continue
            self.counters["sent"] += 1
            self.message_ids.append((f"{meta.feed}/{meta.rendition}", meta.seq, out.to_id, message_id))
        self.seal_seconds.append(time.perf_counter() - started)

    def handle_callback(self, body: bytes) -> int:
        """A gateway callback for the sender identity: delivery receipts from recipients."""
        try:
            received = self.receiver.handle_body(body)
        except ReplayedMessage:
            return 200
        except SealingError as err:
            log.info("callback refused: %s", err.code)
            return 400
        if isinstance(received.message, DeliveryReceipt):
            for message_id in received.message.message_ids:
                self.delivered[message_id.hex()] = received.sender
            self.counters["receipts"] += 1
            while len(self.delivered) > 100_000:
                self.delivered.pop(next(iter(self.delivered)))
        return 200

    def receipts(self) -> dict[str, str]:
        return dict(self.delivered)

    def flush(self) -> None:
        self.catalog.flush()

    def catalog_rows(self) -> list[dict]:
        self.catalog.flush()
        return self.catalog.read().to_pylist()

    def stats(self) -> dict:
        return {"counters": dict(self.counters), "seal_seconds": list(self.seal_seconds), "sent": list(self.message_ids)}
