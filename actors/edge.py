"""The delivery edge: a Threema recipient (`*ORBEDGE`) that opens the sealed parts, segments and
init segments the gateway delivers, verifies them, keeps the live window of every feed and
rendition, and pushes every accepted write to the Delivery replicas, which follow it with long
polls (`updates`) and answer viewers from their own copy.

Threaded, so that the gateway's callbacks and the replicas' long polls do not queue behind
each other.

Two may run as a pair (`standby_edge`, actors/pair.py): the one standing by has its imports done
and its archive reader open, takes no callbacks and holds the replicas' long polls; when the
holder dies it takes over at once and rebuilds its window from the replicas, as one that Ray
started again does (orbitcast/delivery/rebuild.py), without the second that start takes.

With analysis on, a thread follows each analysed feed's `AnalysisActor` (by name, a call every
`ANALYSIS_POLL_S`): the tags it closed go into the window as `TagUpdate`s, reach the replicas
with the media (an EXT-X-DATERANGE per tagged segment) and are written to the analysis table
beside the catalog. The analyser is made by the transcoder member that runs the feed and
holds no handle of the edge, hence the edge asks. An analyser that is missing or dead costs
a lookup a second; the media path never waits on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque

import ray
from nacl.public import Box
from ray.exceptions import GetTimeoutError, RayError

from orbitcast.analysis.recorder import TagRecorder
from orbitcast.analysis.results import SegmentSummary
from orbitcast.analysis.table import AnalysisTable
from orbitcast.archive import ArchiveReader
from orbitcast.catalog import Catalog
from orbitcast.config import OrbitcastConfig
from orbitcast.delivery.init_recovery import InitFinder
from orbitcast.delivery.policy import policy_of
from orbitcast.delivery.rebuild import Rebuild, adopt, adopt_health
from orbitcast.delivery.status import feeds_status
from orbitcast.delivery.updates import Batch, UpdateLog
from orbitcast.delivery.window import InitUpdate, LiveWindow, PartUpdate, SegmentUpdate, TagUpdate
from orbitcast.gateway.blobstore import BlobStore
from orbitcast.metrics.pipeline import EdgeMetrics
from orbitcast.sealed_delivery import SealingPlan, part_from, rendition_info, segment_from
from orbitcast.sealing.receiver import Receiver
from orbitcast.standby import HOLDING, NotHolding
from orbitcast.store import Store

from .analysis_name import actor_name as analyser_name
from .metrics_hub import report_in_thread, source_name
from .packager import gateway_client
from .pair import PairRole

log = logging.getLogger(__name__)
NAME = "orbitcast-edge"
RECEIPT_EVERY_S = 0.5  # one receipt per sender per half second confirms everything since
RECEIPT_MAX_IDS = 200  # a receipt's box stays far below Threema's 4000-byte limit
ANALYSIS_POLL_S = 0.25  # a tag comes 0.5-1.5 s after its segment; this adds at most a quarter
ANALYSIS_LOOKUP_S = 1.0  # a missing analyser is looked up again after this
ANALYSIS_CALL_S = 2.0  # an analyser that does not answer in this is given up for now
ANALYSIS_FLUSH_S = 10.0  # the analysis table's buffered rows are written this often


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=64,
            concurrency_groups={"watch": 4})
class Edge:
    def __init__(self, config: OrbitcastConfig, plan: SealingPlan, gateway: "ray.actor.ActorHandle | None" = None,
                 pair: tuple[int, str] | None = None) -> None:
        """`pair`: (this one's place in the pair, 0 the one that starts holding; the other's actor
        name); None: no standby."""
        assert plan.edge_keys is not None and plan.sender_keys is None, "the edge holds its own key only"
        self.config = config
        self.window = LiveWindow(policy_of(config))
        self.lock = threading.Lock()
        self.log = UpdateLog(self._snapshot)
        restarted = ray.get_runtime_context().was_current_actor_reconstructed
        # Started again by Ray: the replicas hand over their windows before new media is taken.
        self.rebuild = Rebuild(restarted and pair is None)
        self.health: dict[str, dict] = {f.name: {"feed": f.name, "state": "starting"} for f in config.feeds}
        self._reported: set[str] = set()  # feeds whose actors reported their health to this edge
        self._polled_by: dict[str, float] = {}  # standing by: follower -> until when its poll is held
        self._health_lock = threading.Lock()
        self._gateway = gateway
        self.client = gateway_client(plan, plan.edge, plan.edge_secret, gateway)
        self.receiver = Receiver(plan.edge, plan.edge_keys, plan.edge_secret, self.client.public_key, self.client.download_blob)
        self.senders = {plan.sender}
        self.archive = self._archive(config, plan)
        self.inits = InitFinder(self.archive.init)
        # wall clock at arrival - end of the media, per kind (what a viewer can at best see)
        self.arrival_lag: dict[str, deque[float]] = {"part": deque(maxlen=2000), "media": deque(maxlen=1000)}
        self._receipts: dict[str, list[bytes]] = defaultdict(list)
        self._receipts_lock = threading.Lock()
        threading.Thread(target=self._send_receipts, name="receipts", daemon=True).start()
        self.metrics = EdgeMetrics()  # recorded under self.lock; reported to the metrics hub
        self._analysed = [f.name for f in config.feeds if config.analysis.covers(f.name)]
        table = AnalysisTable(Store(config.store)) if self._analysed else None
        self.tags = TagRecorder(table, self._segment_date, config.segment_duration, time.time, flush_s=ANALYSIS_FLUSH_S)
        self._tags_lock = threading.Lock()
        self.analysis_counters = {"tags": 0, "refused": 0, "lookups": 0, "failures": 0}
        self.pair = (PairRole(pair[0], pair[1], self._take_over, restarted, "the edge", prepare=self._rebuild_anew)
                     if pair is not None else None)
        if self.pair is None or self.pair.holding:
            self._start_duties()

    def _start_duties(self) -> None:
        """What only the edge that holds does beside taking media: its metrics, the tags."""
        report_in_thread(source_name("edge", "edge"), self._metrics_snapshot)
        if self._analysed:
            threading.Thread(target=self._follow_analysis, args=(self._analysed,), name="analysis", daemon=True).start()

    def _rebuild_anew(self) -> None:
        """Taking over (the other of the pair died, or, started again, this one is to hold): the
        replicas hand over their windows before new media is taken, as after a restart; those
        whose long polls it holds are known, and not waited for longer than they take."""
        with self._health_lock:
            now = time.monotonic()
            polling = {f for f, until in self._polled_by.items() if until > now and f}
        self.rebuild = Rebuild(True, expected=polling)

    def _take_over(self, why: str) -> None:
        if self._gateway is not None:  # its callbacks come here now (the call to the dead one may take 1-2 s to fail)
            self._gateway.holder.remote(ray.get_runtime_context().get_actor_name())
        self._start_duties()

    def _check_holding(self) -> None:
        if self.pair is not None and not self.pair.holding:
            raise NotHolding("this edge stands by")

    @ray.method(concurrency_group="watch")
    def watch(self, seconds: float) -> str:
        """This one's role in the pair (actors/pair.py)."""
        return self.pair.watch(seconds) if self.pair is not None else HOLDING

    @ray.method(concurrency_group="watch")
    def role(self) -> str:
        return self.pair.role if self.pair is not None else HOLDING

    # -- the Threema side -----------------------------------------------------------------

    def handle_callbacks(self, bodies: list[bytes]) -> list[int]:
        """Several gateway callbacks in one call (the gateway's batched transport inside the
        cluster); the status of each, as an HTTP front would answer it. The one standing by
        refuses (NotHolding): the gateway goes to the other."""
        self._check_holding()
        return [self.handle_callback(body) for body in bodies]

    def handle_callback(self, body: bytes) -> int:
        """One gateway callback POST; the HTTP status to answer (as Threema's receivers do)."""
        self._check_holding()
        self.rebuild.wait()
        status, received = self.receiver.answer_callback(body)
        if received is None:
            return status
        if received.sender in self.senders:
            with self._receipts_lock:
                self._receipts[received.sender].append(received.callback.message_id_bytes)
        meta = received.meta
        if received.sender not in self.senders or meta is None or received.segment is None:
            return 200  # not media from our packager (or a fragment still incomplete)
        recovered = None
        if meta.kind != "init" and meta.init and self.window.init(meta.feed, meta.rendition) is None:
            recovered = self.inits.find(meta.feed, meta.rendition, meta.init)  # outside the lock: a store read
        with self.lock:
            if recovered is not None and self.window.init(meta.feed, meta.rendition) is None:
                self._apply(self._init_update(meta.feed, meta.rendition, recovered))
            if meta.kind == "init":
                update = self._init_update(meta.feed, meta.rendition, received.segment)
            elif meta.kind == "part":
                part = part_from(meta, received.segment, self.window.init(meta.feed, meta.rendition))
                update = PartUpdate(part)
            else:
                seg = segment_from(meta, received.segment, self.window.init(meta.feed, meta.rendition))
                update = SegmentUpdate(seg)
            if update is not None and self._apply(update):
                self.metrics.published(meta.kind, meta.feed, meta.rendition, len(received.segment), meta.duration)
                if meta.program_date_time is not None and meta.kind in self.arrival_lag:
                    end = meta.program_date_time.timestamp() + meta.duration
                    self.arrival_lag[meta.kind].append(time.time() - end)
                    self.metrics.arrived(meta.kind, time.time() - end)
        return 200

    def _init_update(self, feed: str, rendition: str, init: bytes) -> InitUpdate | None:
        info = rendition_info(self.config, rendition, init)
        return InitUpdate(feed, info, init) if info is not None else None

    def _apply(self, update: "InitUpdate | PartUpdate | SegmentUpdate | None") -> bool:
        """Into the window and, when it changed it, on to the replicas (under self.lock)."""
        if update is None or not self.window.apply(update):
            return False
        self.log.append(update)
        return True

    def _metrics_snapshot(self) -> dict:
        with self.lock:
            self.metrics.receiver(self.receiver.counters)
            return self.metrics.store.snapshot(time.time())

    def _archive(self, config: OrbitcastConfig, plan: SealingPlan) -> ArchiveReader:
        """Archived segments for time-shift, opened here: only the edge's key opens them."""
        store = Store(config.store)
        assert plan.edge_keys is not None
        private = plan.edge_keys.private
        box: list[Box] = []

        def sender_box() -> Box:
            if not box:  # the sender's key from the gateway, once
                public = self.client.public_key(plan.sender)
                if public is None:
                    raise LookupError(f"the gateway does not know {plan.sender}")
                box.append(Box(private, public))
            return box[0]

        # The embedded gateway keeps its blobs in the store: read them there, not through the
        # gateway actor that carries the live traffic. A remote gateway is asked by its API.
        fetch = self.client.download_blob
        if plan.gateway is not None:
            fetch = BlobStore.from_uri(plan.gateway.blob_store).get
        return ArchiveReader(Catalog(store), sender_box, fetch, config.segment_duration, config.archive.cache_bytes)

    def archived_segment(self, feed: str, rendition: str, seq: int) -> bytes | None:
        """A segment opened from the archive (time-shift), or None when it has none."""
        return self.archive.segment(feed, rendition, seq)

    def archived_init(self, feed: str, rendition: str, tag: str) -> bytes | None:
        return self.archive.init(feed, rendition, tag)

    def _send_receipts(self) -> None:
        while True:
            time.sleep(RECEIPT_EVERY_S)
            with self._receipts_lock:
                due, self._receipts = self._receipts, defaultdict(list)
            for sender, ids in due.items():
                for i in range(0, len(ids), RECEIPT_MAX_IDS):
                    try:
                        envelope = self.receiver.receipt_for_ids(sender, ids[i:i + RECEIPT_MAX_IDS])
                        self.client.send_e2e(sender, envelope, no_delivery_receipts=True)
                    except Exception:  # noqa: BLE001 - a receipt is a courtesy; the media is listed
                        log.warning("delivery receipt to %s failed", sender, exc_info=True)

    # -- the replicas' side ---------------------------------------------------------------

    def _snapshot(self) -> list:
        with self.lock:
            return self.window.snapshot()

    def updates(self, epoch: str | None, cursor: int, timeout: float = 5.0, follower: str = "",
                committed: int | None = None) -> Batch:
        """Window writes after `cursor` (a long poll: returns as soon as there are some, or when
        the commit passes `committed`). A follower of the edge before a restart is asked for its
        window (`adopt`). The one standing by holds the poll until it takes over (then the
        follower hands it its window) or `timeout`, then refuses (NotHolding)."""
        if self.pair is not None and not self.pair.holding:
            with self._health_lock:  # the replicas it will know at once when it takes over
                self._polled_by[follower] = time.monotonic() + timeout + 1.0
            if not self.pair.wait_holding(timeout):
                raise NotHolding("this edge stands by")
        batch = self.log.since(epoch, cursor, timeout, lambda: dict(self.health), follower, committed)
        if batch.adopt:
            self.rebuild.asked_by(follower)
        return batch

    def adopt(self, follower: str, updates: list, health: dict[str, dict] | None = None) -> int:
        """A replica's window and its copy of the feeds' health, handed over after a restart
        (orbitcast/delivery/rebuild.py)."""
        self._check_holding()
        with self.lock:
            taken = adopt(self.window, self.log, updates)
        with self._health_lock:
            if health and adopt_health(self.health, self._reported, health):
                self.log.touch()
        self.rebuild.adopted_from(follower)
        return taken

    def set_health(self, feed: str, health: dict) -> None:
        with self._health_lock:
            changed = self.health.get(feed, {}).get("state") != health.get("state")
            self.health[feed] = health
            self._reported.add(feed)
        if changed:
            self.log.touch()

    # -- the analysis stage's tags ---------------------------------------------------------

    def set_analysis(self, feed: str, summaries: list[dict]) -> int:
        """Tags of `feed`'s segments (`SegmentSummary.as_dict()`s): each new one goes to the
        window (and on to the replicas) and to the analysis table; the number taken. A seq's
        tag is set once; later ones for it are ignored."""
        if feed not in {f.name for f in self.config.feeds}:
            return 0
        parsed = []
        for d in summaries:
            try:
                parsed.append(SegmentSummary.from_dict(d))
            except ValueError:
                self.analysis_counters["refused"] += 1
        taken = []
        with self.lock:
            for summary in parsed:
                update = TagUpdate(feed, summary)
                if self.window.apply(update):
                    self.log.append(update)
                    taken.append(summary)
        with self._tags_lock:
            if parsed:  # refused ones too: they are not asked for again
                self.tags.seen(feed, max(s.seq for s in parsed))
            self.tags.received(feed, taken)
        self.analysis_counters["tags"] += len(taken)
        return len(taken)

    def _segment_date(self, feed: str, seq: int) -> "tuple | None":
        with self.lock:
            seg = self.window.segment_at(feed, seq)
        return (seg.program_date_time, seg.duration) if seg is not None else None

    def _follow_analysis(self, feeds: list[str]) -> None:
        handles: dict[str, ray.actor.ActorHandle] = {}
        look_at: dict[str, float] = {}
        while True:
            time.sleep(ANALYSIS_POLL_S)
            for feed in feeds:
                handle = handles.get(feed)
                if handle is None:
                    if time.monotonic() < look_at.get(feed, 0.0):
                        continue
                    look_at[feed] = time.monotonic() + ANALYSIS_LOOKUP_S
                    self.analysis_counters["lookups"] += 1
                    try:
                        handle = handles[feed] = ray.get_actor(analyser_name(feed))
                    except ValueError:
                        continue  # not made yet (or gone): the transcoder's link makes one
                try:
                    with self._tags_lock:
                        after = self.tags.after(feed)
                    got = ray.get(handle.after.remote(after), timeout=ANALYSIS_CALL_S)
                except (RayError, GetTimeoutError):
                    self.analysis_counters["failures"] += 1
                    handles.pop(feed, None)
                    continue
                if got:
                    self.set_analysis(feed, got)
            try:
                with self._tags_lock:
                    self.tags.tick()
            except Exception:  # noqa: BLE001 - a full disk must not stop the tags reaching viewers
                log.warning("analysis table: writing failed", exc_info=True)

    # -- for the pipeline and tests -------------------------------------------------------

    def feeds(self) -> list[dict]:
        with self.lock:
            return feeds_status(self.window, self.health)

    def resume_at(self, feed: str) -> float | None:
        """Media time from which a feed whose reader and transcoder both died goes on
        (LiveWindow.resume_seq). None: nothing of the feed here."""
        with self.lock:
            seq = self.window.resume_seq(feed)
        return None if seq is None else seq * self.config.segment_duration

    def stats(self) -> dict:
        with self._tags_lock:
            table = self.tags.stats()
        return {"receiver": dict(self.receiver.counters), "archive": dict(self.archive.counters),
                "arrival_lag": {k: list(v) for k, v in self.arrival_lag.items()},
                "inits_recovered": dict(self.inits.counters),
                "version": self.log.version, "followers_left_out": self.log.left_out,
                "rebuild": self.rebuild.stats(), "analysis": {**self.analysis_counters, "table": table}}

    def flush_analysis(self) -> None:
        """Write the analysis table's buffered rows now (the pipeline stopping, tests)."""
        with self._tags_lock:
            self.tags.tick()
            self.tags.flush()

