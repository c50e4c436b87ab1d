"""The delivery edge: a Threema recipient (`*ORBEDGE`) that opens the sealed segments the
gateway delivers, verifies them, and keeps the live window of every feed and rendition.

Serve replicas read from it and cache what is immutable; it is threaded so that reads from
many replicas and callbacks from the gateway do not queue behind each other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import ray

from orbitcast.config import OrbitcastConfig
from orbitcast.delivery.playlists import iso_ms
from orbitcast.delivery.window import LiveWindow
from orbitcast.gateway.client import GatewayClient
from orbitcast.sealed_delivery import SealingPlan, rendition_info, segment_from
from orbitcast.sealing.errors import ReplayedMessage, SealingError
from orbitcast.sealing.receiver import Received, Receiver

log = logging.getLogger(__name__)
NAME = "orbitcast-edge"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=32)
class Edge:
    def __init__(self, config: OrbitcastConfig, plan: SealingPlan) -> None:
        assert plan.edge_keys is not None and plan.sender_keys is None, "the edge holds its own key only"
        self.config = config
        self.window = LiveWindow(config.live_window, config.segment_duration)
        self.lock = threading.Lock()
        self.health: dict[str, dict] = {f.name: {"feed": f.name, "state": "starting"} for f in config.feeds}
        self.client = GatewayClient(plan.gateway_url, plan.edge, plan.edge_secret)
        self.receiver = Receiver(plan.edge, plan.edge_keys, plan.edge_secret, self.client.public_key, self.client.download_blob)
        self.senders = {plan.sender}
        # Delivery receipts go back to the packager off the callback's path, in arrival order.
        self.receipts = ThreadPoolExecutor(max_workers=1, thread_name_prefix="receipts")
        self.arrival_lag: deque[float] = deque(maxlen=1000)  # wall clock at arrival - end of the segment's media

    def handle_callback(self, body: bytes) -> int:
        """One gateway callback POST; the HTTP status to answer (as Threema's receivers do)."""
        try:
            received = self.receiver.handle_body(body)
        except ReplayedMessage:
            return 200  # at-least-once delivery: already have it
        except SealingError as err:
            log.info("callback refused: %s", err.code)
            return 400
        except Exception:  # noqa: BLE001 - a blob fetch that failed: the gateway retries later
            log.exception("callback processing failed")
            return 500
        meta = received.meta
        if received.sender in self.senders:
            self.receipts.submit(self._send_receipt, received)
        if received.sender not in self.senders or meta is None or received.segment is None:
            return 200  # not a segment from our packager (or a fragment still incomplete)
        with self.lock:
            if meta.kind == "init":
                info = rendition_info(self.config, meta.rendition, received.segment)
                if info is not None:
                    self.window.set_init(meta.feed, info, received.segment)
                return 200
            seg = segment_from(meta, received.segment, self.window.init(meta.feed, meta.rendition))
            if self.window.add(seg):
                self.arrival_lag.append(time.time() - seg.program_date_time.timestamp() - seg.duration)
        return 200

    def _send_receipt(self, received: Received) -> None:
        try:
            self.client.send_e2e(received.sender, self.receiver.receipt_for(received), no_delivery_receipts=True)
        except Exception:  # noqa: BLE001 - a receipt is a courtesy; the segment is already listed
            log.warning("delivery receipt to %s failed", received.sender, exc_info=True)

    def set_health(self, feed: str, health: dict) -> None:
        self.health[feed] = health

    def master(self, feed: str) -> str | None:
        with self.lock:
            return self.window.master(feed)

    def media(self, feed: str, rendition: str) -> str | None:
        with self.lock:
            return self.window.media(feed, rendition)

    def init(self, feed: str, rendition: str) -> bytes | None:
        with self.lock:
            return self.window.init(feed, rendition)

    def segment(self, feed: str, rendition: str, seq: int) -> bytes | None:
        with self.lock:
            seg = self.window.segment(feed, rendition, seq)
        return seg.data if seg else None

    def feeds(self) -> list[dict]:
        now = time.time()
        out = []
        with self.lock:
            names = sorted(set(self.health) | set(self.window.feeds()))
            for name in names:
                newest = self.window.newest(name)
                entry = dict(self.health.get(name, {"feed": name, "state": "unknown"}))
                entry["renditions"] = [
                    {"name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth, "codecs": r.codecs}
                    for r in self.window.renditions(name)
                ]
                if newest is not None:
                    end = newest.program_date_time.timestamp() + newest.duration
                    entry["last_segment"] = {
                        "seq": newest.seq,
                        "program_date_time": iso_ms(newest.program_date_time),
                        "duration": newest.duration,
                    }
                    # How far the newest published media lags the wall clock.
                    entry["latency"] = round(now - end, 3)
                else:
                    entry["last_segment"] = None
                    entry["latency"] = None
                out.append(entry)
        return out

    def stats(self) -> dict:
        return {"receiver": dict(self.receiver.counters), "arrival_lag": list(self.arrival_lag)}
