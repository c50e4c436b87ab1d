"""ThreemaPackager, one per feed: checks the digest of each part and segment, catalogs and
certifies every segment, seals each once as a Threema file blob and sends one small E2E file
message per recipient (the delivery edge among them).

One per feed so that packaging grows with the feeds and no feed waits behind another, and a
second one standing by (config `standby_packagers`), idle until the transcoder sends it the feed
because the first died (orbitcast/standby.py). It holds
the sender's private key and recipients' public keys, never a recipient's private key. Nothing
it stores is plaintext media: the blobs at rest are ciphertext, and each catalog row keeps the
file message sealed to the edge that opens them (time-shift, docs/archive.md). Its catalog's
upkeep (compaction, retention) runs on a thread of its own, and so does the sealing of the
analysis stage's tags to the subscribers that asked for them (text messages, docs/analysis.md).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import Counter, deque

import ray
import requests
from nacl.public import PublicKey

from orbitcast.archive import archived_of
from orbitcast.catalog import Catalog, put_init, warm_writer
from orbitcast.config import OrbitcastConfig
from orbitcast.delivery.names import init_tag
from orbitcast.gateway.blobstore import BlobStore
from orbitcast.gateway.client import GatewayAPI, GatewayClient, GatewayHTTPError, send_e2e_many, upload_blobs
from orbitcast.gateway.errors import GatewayRefusal
from orbitcast.ledger.leaf import LeafFields
from orbitcast.metrics.pipeline import PackagerMetrics
from orbitcast.priority import give_way
from orbitcast.retention import RetentionPolicy, apply_retention
from orbitcast.sealed_delivery import (
    SealingPlan,
    init_meta,
    meta_of,
    part_meta,
    sending_order,
    recipients_for,
    tag_recipients,
    tag_text,
)
from orbitcast.sealing.blobs import SegmentMeta
from orbitcast.sealing.sealer import SealedSegment, SegmentSealer
from orbitcast.segment import Part, Segment
from orbitcast.standby import check_incarnation
from orbitcast.store import Store

from .analysis_name import actor_name as analyser_name
from .gateway import ActorGatewayClient
from .metrics_hub import report_in_thread, source_name

log = logging.getLogger(__name__)
GATEWAY_WAIT_S = 60.0  # at start the gateway app may still be deploying
TAG_POLL_S, TAG_CALL_S = 0.5, 5.0  # following the analysis actor's tags (as the edge does)


def packager_name(feed: str) -> str:
    return f"orbitcast-packager-{feed}"


def gateway_client(plan: SealingPlan, identity: str, secret: str,
                   gateway: "ray.actor.ActorHandle | None") -> GatewayAPI:
    """The embedded gateway by actor calls; a remote (real) one over its HTTP API."""
    if gateway is not None:
        return ActorGatewayClient(gateway, identity, secret)
    return GatewayClient(plan.gateway_url, identity, secret)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, concurrency_groups={"watch": 4})
class Packager:
    def __init__(self, config: OrbitcastConfig, feed: str, plan: SealingPlan,
                 ledger: "ray.actor.ActorHandle | None" = None, gateway: "ray.actor.ActorHandle | None" = None,
                 deliver: bool = True, standby: bool = False) -> None:
        assert plan.sender_keys is not None and plan.edge_keys is None, "the packager holds the sender key only"
        # False for a recording (docs/vod.md): its media is sealed, catalogued and certified, but
        # no message is sent; the edge opens the sealed message the catalog keeps when asked.
        self.deliver = deliver
        give_way()  # bulk work: the viewer path runs first (orbitcast/priority.py)
        self.config = config
        self.feed = feed
        self.store = Store(config.store)
        # Rows written with each publish's segments: rows held back for a bigger file died with
        # the process (a packager killed lost up to five segments from the catalog, so from
        # time-shift, while they had been sent and certified). The upkeep folds the small files.
        self.catalog = Catalog(self.store)
        self.ledger = ledger
        self.sealer = SegmentSealer(plan.sender_keys, max_blob_bytes=config.threema.max_blob_bytes)
        self.client = gateway_client(plan, plan.sender, plan.sender_secret, gateway)
        self.edge = plan.edge
        self._edge_public: PublicKey | None = None  # asked of the gateway on first use
        self.counters: Counter[str] = Counter()
        self.message_ids: deque[tuple[str, int, str, str]] = deque(maxlen=10_000)  # (feed/rendition, seq, to, id)
        # What the gateway refused to queue: the gateway counts each per recipient as well and
        # raises its alarm in /api/feeds (a full queue); here, which media it was.
        self.refusals: deque[dict] = deque(maxlen=100)
        self.seal_seconds: deque[float] = deque(maxlen=1000)
        self.plan_blobs = plan.gateway.blob_store if plan.gateway is not None else None
        self.init_tags: dict[str, str] = {}  # rendition -> tag of the init its segments play with
        self.upkeep: dict = {}  # the last compaction / retention run
        self.metrics = PackagerMetrics(feed)  # seal times, messages, ledger size: to the metrics hub
        self.tag_to = tag_recipients(config, feed)  # subscribers of the analysis tags
        self.started_at = time.time()
        self.incarnation_token = secrets.token_hex(8)  # orbitcast/standby.py
        self.first_publish_at: float | None = None  # None: nothing published by this process yet
        self.last_publish_at = 0.0
        self._took_feed = False
        # The feed's first packager takes it now (its metrics are there before its first part,
        # and for a feed that never makes one). A standby, and any packager Ray started again
        # (it may be standing by now, the feed with the other), waits for its first publish.
        if not standby and not ray.get_runtime_context().was_current_actor_reconstructed:
            self._take_the_feed()
        else:
            threading.Thread(target=self._warm, name="warm", daemon=True).start()

    def _warm(self) -> None:
        """Standing by: what a first publish would do once, done now (the catalog writer's first
        table, the edge's key from the gateway), so that taking the feed does not wait for it."""
        try:
            warm_writer()
            self._edge_key()
        except Exception:  # noqa: BLE001 - the first publish does it again, as without warming
            log.debug("warming the standby packager of %s failed", self.feed, exc_info=True)

    def _take_the_feed(self) -> None:
        """The feed's work besides publishing starts here. A standby (orbitcast/standby.py)
        waits idle until it takes the feed; two packagers of a feed compacting one catalog, or
        reporting under one metrics source, would trip each other."""
        self._took_feed = True
        threading.Thread(target=self._maintain, name="archive-upkeep", daemon=True).start()
        report_in_thread(source_name("packager", self.feed), self._metrics_snapshot)
        if self.tag_to:
            threading.Thread(target=self._follow_tags, name="analysis-tags", daemon=True).start()

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

    def incarnation(self) -> str:
        return self.incarnation_token

    def whereabouts(self) -> tuple[str, float]:
        """(incarnation, when it last published; 0: never): which of a feed's packagers has it."""
        return self.incarnation_token, self.last_publish_at

    @ray.method(concurrency_group="watch")
    def alive(self, seconds: float) -> bool:
        """Answers after `seconds`: a call in flight, so that the caller hears of this process's
        death as the connection drops (a call made after it would wait for Ray's restart)."""
        time.sleep(seconds)
        return True

    def publish(self, inits: dict[str, bytes], items: list[Part | Segment], incarnation: str | None = None) -> int:
        """Inits, then parts and segments in `sending_order`. `inits`: the init of each rung;
        one this packager has not sent yet is sealed and sent first. `incarnation`: the process
        the call is meant for (orbitcast/standby.py); None: whichever runs it."""
        check_incarnation(self.incarnation_token, incarnation)
        self.last_publish_at = time.time()
        if self.first_publish_at is None:
            self.first_publish_at = time.time()
            if not self._took_feed:
                self._take_the_feed()
        for rendition, init in inits.items():
            tag = init_tag(init)
            if self.init_tags.get(rendition) == tag:
                continue
            meta = init_meta(self.feed, rendition, init)
            put_init(self.store, self.feed, rendition, tag, meta.digest, meta.size,
                     archived_of(self._send(init, meta), self.edge))
            self.init_tags[rendition] = tag  # sent: a call that failed before sends it again
        for parts, segments in sending_order(items):
            for item in (*parts, *segments):
                item.verified()  # hand-off check: transcoder -> packager
            self._parts(parts)
            self._segments(segments)
        return len(items)

    def _parts(self, parts: list[Part]) -> None:
        """A batch's parts (every rung's newest), sealed and sent in two round trips to the
        gateway rather than two each. Parts are read once by the edge: kept in the embedded
        gateway's memory only (a remote gateway keeps every blob as it does)."""
        if parts:
            self._send_many([(p.data, part_meta(p, self.init_tags.get(p.rendition, ""))) for p in parts],
                            transient=True)

    def _segments(self, segments: list[Segment]) -> None:
        if self.ledger is not None and segments:
            # Certified before sent: the ledger signs a head covering each segment before the
            # edge can list it, so every listed segment has a proof. It needs the digests only.
            leaves = ray.get(self.ledger.append.remote([LeafFields.from_segment(s) for s in segments]))
            self.metrics.certified(leaves)
            # None: the log holds another version of this seq. A member that took the feed over
            # made it again (its parts are held back, LiveTranscoder.parts_from_seq); the
            # certified one stands, sent before or by its retried publish; this one, listed,
            # would be bytes no proof covers.
            self.counters["superseded"] += sum(leaf is None for leaf in leaves)
            segments = [s for s, leaf in zip(segments, leaves) if leaf is not None]
        if not segments:
            return
        sealed = self._send_many([(s.data, meta_of(s, self.init_tags.get(s.rendition, ""))) for s in segments])
        for seg, one in zip(segments, sealed):
            # the row says where its ciphertext rests and holds the edge's sealed message for it
            self.catalog.add(seg, archived_of(one, self.edge, self.init_tags.get(seg.rendition)))
        self.catalog.flush()

    def _send(self, data: bytes, meta: SegmentMeta, transient: bool = False) -> SealedSegment:
        return self._send_many([(data, meta)], transient)[0]

    def _send_many(self, items: list[tuple[bytes, SegmentMeta]], transient: bool = False) -> list[SealedSegment]:
        started = time.perf_counter()
        edge_key = self._edge_key()
        sealed = self.sealer.seal_many(
            [(data, meta, recipients_for(self.config, edge_key, meta.feed, meta.rendition, meta.kind))
             for data, meta in items],
            lambda blobs: upload_blobs(self.client, blobs, transient=transient))
        if self.deliver:
            sends = [(meta, out) for (_, meta), s in zip(items, sealed) for out in s.outgoing]
            results = send_e2e_many(self.client, [(out.to_id, out.envelope) for _, out in sends])
            for (meta, out), result in zip(sends, results):
                self._sent(meta, out.to_id, result)
        # one round trip for the batch: each item is counted its share of it
        each = (time.perf_counter() - started) / len(items)
        for _, meta in items:
            self.seal_seconds.append(each)
            self.metrics.sealed(meta.kind, each)
        return sealed

    def _sent(self, meta: SegmentMeta, to_id: str, result: "str | GatewayRefusal | GatewayHTTPError") -> None:
        if isinstance(result, (GatewayHTTPError, GatewayRefusal)):
            # One recipient's refusal (full queue, no credits) must not stop the others.
            self.counters[f"refused_{result.status}"] += 1
            self.counters["refused"] += 1
            self.refusals.append({"feed": meta.feed, "rendition": meta.rendition, "seq": meta.seq,
                                  "kind": meta.kind, "to": to_id, "status": result.status, "reason": str(result)})
            if self.counters["refused"] % 100 == 1:  # the first of a run, then every 100th
                log.warning("gateway refused %s/%s/%s for %s: %s (%d refused so far)", meta.feed,
                            meta.rendition, meta.seq, to_id, result, self.counters["refused"])
            return
        self.counters["sent"] += 1
        self.message_ids.append((f"{meta.feed}/{meta.rendition}", meta.seq, to_id, result))

    def _follow_tags(self) -> None:
        """The analysis stage's tags of this feed, each sealed once as a text message to every
        subscriber that asked for them: followed as the edge follows them (`after(seq)`), off
        the publishing path; an analyser that is away is looked up again."""
        handle: ray.actor.ActorHandle | None = None
        after: int | None = None
        while True:
            time.sleep(TAG_POLL_S)
            try:
                if handle is None:
                    handle = ray.get_actor(analyser_name(self.feed))
                got = ray.get(handle.after.remote(after), timeout=TAG_CALL_S)
            except ValueError:  # not made yet: the transcoder's link makes it
                continue
            except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
                handle = None
                continue
            for summary in got:
                after = summary["seq"] if after is None else max(after, summary["seq"])
                self._send_tag(summary)

    def _send_tag(self, summary: dict) -> None:
        text = tag_text(self.feed, summary)
        for to_id, public in self.tag_to.items():
            try:
                self.client.send_e2e(to_id, self.sealer.seal_text(to_id, public, text))
                self.counters["tags_sent"] += 1
            except (GatewayHTTPError, GatewayRefusal, requests.RequestException, ray.exceptions.RayError) as err:
                self.counters["tags_refused"] += 1
                if self.counters["tags_refused"] % 100 == 1:
                    log.warning("gateway refused a tag of %s/%s for %s: %s", self.feed, summary.get("seq"), to_id, err)

    def flush(self) -> None:
        self.catalog.flush()

    def _metrics_snapshot(self) -> dict:
        self.metrics.counted(self.counters)
        return self.metrics.store.snapshot(time.time())

    def _maintain(self) -> None:
        """Compaction and retention of this feed's archive, off the publishing path: a catalog
        of its own (no buffered rows), files that flushes add meanwhile are left alone."""
        archive = self.config.archive
        policy = RetentionPolicy(archive.retention.hours * 3600 if archive.retention.hours else None,
                                 archive.retention.bytes)
        catalog = Catalog(self.store)
        # the embedded gateway's blobs; a remote gateway keeps (and expires) its own
        blobs = BlobStore.from_uri(self.plan_blobs) if self.plan_blobs else None

        def delete(blob_id: str) -> bool:
            if blobs is None:
                return False
            try:
                blobs.delete(blob_id)
                return True
            except GatewayRefusal:  # NotFound: already gone, or never here (a remote gateway)
                return False

        retention_due = time.monotonic() + archive.retention.every_s
        while True:
            time.sleep(archive.maintain_every_s)
            try:
                if policy.enabled and time.monotonic() >= retention_due:
                    retention_due = time.monotonic() + archive.retention.every_s
                    report = apply_retention(catalog, self.feed, policy, delete).__dict__
                else:  # compaction only: flush files folded into hour files
                    report = {"removed_segments": 0, "files_merged": catalog.compact(self.feed, min_files=1)}
                self.upkeep = {"at": time.time(), **report}
            except Exception:  # noqa: BLE001 - upkeep retries next round; publishing goes on
                log.exception("archive upkeep of %s failed", self.feed)

    def archive_upkeep(self) -> dict:
        return dict(self.upkeep)

    def catalog_rows(self) -> list[dict]:
        self.catalog.flush()
        return self.catalog.read().to_pylist()

    def stats(self) -> dict:
        return {"counters": dict(self.counters), "seal_seconds": list(self.seal_seconds), "sent": list(self.message_ids),
                "refusals": list(self.refusals), "started_at": self.started_at, "first_publish_at": self.first_publish_at,
                "last_publish_at": self.last_publish_at, "pid": os.getpid()}
