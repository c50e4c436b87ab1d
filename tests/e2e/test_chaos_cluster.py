"""Faults on a multi-node cluster, as a low-latency player meets them (issue 11).

A Ray cluster of its own (`ray.cluster_utils.Cluster`: a head and two worker nodes, on this
machine; Ray spreads the pipeline's actors over all three) runs the small two-rung pipeline. A
player per rung follows it as hls.js does in low-latency mode (a blocking reload for the hinted
part, again as soon as each answer comes) and fetches every part and every whole segment it
lists. Each kind of actor the viewer's media passes through is killed in turn with SIGKILL (no
clean-up, as a crash or the OOM killer); then the worker node that holds most of them is
removed, as a machine lost (left out with ORBITCAST_CHAOS_NODE_LOSS=0). What a viewer would
check afterwards:

- every seq between the first and the last one seen was listed with media, under the MSN it
  first had, in both rungs (nothing missing, nothing listed twice, no gap);
- no part was listed and later left out of its segment's parts, no segment listed and later
  taken back;
- every part and segment listed could be fetched (one answered 503 with Retry-After, a seq
  closed short whose certified segment is still being made after a node's loss, once more at
  the end, as a player tries again);
- every whole segment fetched verifies against the ledger (`orbitcast verify --recording`);
- after each fault, new parts came again (bounded). How long the player waited for its next
  part is printed per fault: the issue's bar is the part hold-back (a standby already
  running), which this pipeline does not reach yet (docs/benchmarks.md, faults).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import m3u8
import pytest
import requests

from tests.conftest import SYNTH
from tests.small_pipeline import BOTTOM, TOP, small_config
from tests.waiting import wait_for

pytestmark = [pytest.mark.own_cluster, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
FEED = "chaos"
RUNGS = (TOP, BOTTOM)
# The actors a viewer's media passes through (class names as Ray lists them), killed in turn.
KINDS = ("Transcoder", "Packager", "Edge", "GatewayActor", "LedgerActor", "FeedActor", "SenderInbox",
         "ServeReplica:orbitcast:Delivery")
# To chase one kind's fault: ORBITCAST_CHAOS_KINDS=Transcoder,Transcoder,Transcoder
KINDS = tuple(k for k in os.environ.get("ORBITCAST_CHAOS_KINDS", "").split(",") if k) or KINDS
# The loss of a whole worker node, after the kills (3-8 s without a new part here: Ray's health
# checks, then the restarts); ORBITCAST_CHAOS_NODE_LOSS=0 leaves it out, to chase a kill's fault.
NODE_LOSS = os.environ.get("ORBITCAST_CHAOS_NODE_LOSS") != "0"
# The pool as shipped (two members: a feed whose member dies moves to the other at once); with
# ORBITCAST_CHAOS_TRANSCODERS=1 the killed member's own restart takes the feed back.
TRANSCODERS = int(os.environ.get("ORBITCAST_CHAOS_TRANSCODERS", "2"))
RECOVERY_S = 30.0  # a fault after which no new part comes in this long has lost the stream
SETTLE_S = 4.0  # after the first new part, before the next fault
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\d+)\.(\d+)\.m4s"')


@dataclass
class Follower:
    """One rung's LL-HLS player: full playlists by blocking reload, every part and segment fetched."""

    base: str  # .../live/FEED/RUNG/
    session: requests.Session = field(default_factory=requests.Session)
    parts: dict[tuple[int, int], float] = field(default_factory=dict)  # (seq, index) -> first listed
    parts_of: dict[int, set[int]] = field(default_factory=dict)  # seq -> part indexes ever listed
    msn_of: dict[int, int] = field(default_factory=dict)  # seq -> the MSN it was first listed at
    segments: dict[int, bytes] = field(default_factory=dict)  # seq -> bytes, fetched when listed whole
    listed_as: dict[int, tuple[float, int]] = field(default_factory=dict)  # seq -> (EXTINF, parts listed with it)
    gaps: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # what a viewer would report, with when
    reload_errors: int = 0
    last_error: str = ""  # the last failed reload, as the player got it
    init: bytes | None = None
    media_sequences: list[int] = field(default_factory=list)  # each playlist's, in the order received
    # the playlists (before, then the one with it) around the first problem a playlist showed,
    # with when each came: a rare failure is read from what the player was given
    evidence: list[str] = field(default_factory=list)
    # answered 503 with Retry-After (a segment closed short after a node's loss, its certified
    # bytes still being made): a player tries again later, as this one does at the end
    deferred: dict[str, float] = field(default_factory=dict)  # URI -> when first answered so
    _last: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        query = ""
        while not self.stop.is_set():
            try:
                r = self.session.get(self.base + "index.m3u8" + query, timeout=10)
            except requests.RequestException:
                r = None
            if r is None or r.status_code != 200:
                self.reload_errors += 1  # a player retries: counted, not a problem by itself
                self.last_error = "no answer" if r is None else f"{r.status_code} {r.text[:80]!r}"
                query = ""
                time.sleep(0.1)
                continue
            self._note(r.text)
            hint = _HINT.search(r.text)
            query = f"?_HLS_msn={hint.group(1)}&_HLS_part={hint.group(2)}" if hint else ""

    def _get(self, uri: str) -> bytes | None:
        for _ in range(3):  # a connection cut by a dying replica is tried again, as players do
            try:
                r = self.session.get(self.base + uri, timeout=10)
            except requests.RequestException:
                continue
            if r.status_code == 200:
                return r.content
            if r.status_code == 503 and r.headers.get("retry-after") and uri not in self.deferred:
                self.deferred[uri] = time.time()
                return None
            self.problems.append(f"{time.time():.3f} {uri}: HTTP {r.status_code}")
            return None
        self.problems.append(f"{time.time():.3f} {uri}: no answer")
        return None

    def _note(self, text: str) -> None:
        now = time.time()
        problems = len(self.problems)
        self._read(text, now)
        if len(self.problems) > problems and not self.evidence:
            self.evidence = [self._last, f"{now:.3f}\n{text}"]
        self._last = f"{now:.3f}\n{text}"

    def _read(self, text: str, now: float) -> None:
        pl = m3u8.loads(text)
        if self.init is None and pl.segment_map:
            self.init = self._get(pl.segment_map[0].uri.split("?")[0])
        msn = pl.media_sequence
        self.media_sequences.append(msn)
        for s in pl.segments:
            seq = int(s.uri.split(".")[0]) if s.uri else msn  # the segment in progress has no URI
            first_msn = self.msn_of.setdefault(seq, msn)
            if first_msn != msn:
                self.problems.append(f"{now:.3f} seq {seq} listed at MSN {msn}, before at {first_msn}")
            named = {tuple(int(x) for x in p.uri.split(".")[:2]) for p in s.parts if p.uri}
            strays = sorted(f"{a}.{b}" for a, b in named if a != seq)
            if strays:
                self.problems.append(f"{now:.3f} parts {strays} listed under seq {seq}")
            listed = {b for a, b in named if a == seq}
            if listed:
                left_out = self.parts_of.get(seq, set()) - listed
                if left_out:
                    self.problems.append(f"{now:.3f} parts {sorted(left_out)} of seq {seq} listed, then left out")
                for index in sorted(listed - self.parts_of.get(seq, set())):
                    self.parts[(seq, index)] = now
                    self._get(f"{seq}.{index}.m4s")
                self.parts_of.setdefault(seq, set()).update(listed)
            if s.uri:
                if s.gap_tag:
                    self.gaps.add(seq)
                    if seq in self.segments:
                        self.problems.append(f"{now:.3f} seq {seq} listed with media, then as a gap")
                elif seq not in self.segments:
                    data = self._get(s.uri)
                    if data is not None:
                        self.segments[seq] = data
                        self.listed_as[seq] = (s.duration, len(listed))
            msn += 1

    def longest_wait(self, t0: float, t1: float) -> tuple[float, float | None]:
        """(longest time without a new part within [t0, t1], time to the first new part after t0)."""
        times = sorted(t for t in self.parts.values() if t0 <= t <= t1)
        if not times:
            return t1 - t0, None
        edges = [t0, *times, t1]  # the wait that the next fault cut short counts too
        return max(b - a for a, b in zip(edges, edges[1:])), times[0] - t0

    def missing(self) -> list[int]:
        whole = set(self.segments) | self.gaps
        if not whole:
            return []
        return [s for s in range(min(whole), max(whole) + 1) if s not in self.segments]

    def passed_over(self, seq: int) -> bool:
        """Whether the playlists this player got went from listing `seq` (or before it) to
        starting after it: a stall longer than the window, or a window started again past it
        (the edge gone with every replica that held it, at a node's loss). Then the player could
        not see it whole; whether it was made, the archive and the ledger say."""
        ms = self.media_sequences
        return any(a <= seq < b for a, b in zip(ms, ms[1:]))


def _anatomy(base: str, rung: str, player: Follower, seqs: list[int]) -> str:
    """For a segment that did not verify: its fragments (size, decode time) against the
    certified leaf's size and digest, and where in the fetched bytes the leaf's bytes lie."""
    import hashlib

    from orbitcast.media.fmp4 import iter_boxes

    lines = []
    for seq in sorted({s + d for s in seqs for d in (-1, 0, 1)}):
        data = player.segments.get(seq, b"")
        try:
            leaf = requests.get(f"{base}/ledger/{FEED}/proof/{rung}/{seq}", timeout=10).json()["leaf_fields"]
        except (requests.RequestException, ValueError, KeyError) as err:
            leaf = {"error": repr(err)}
        boxes = [(kind.decode(), end - start) for kind, start, end in iter_boxes(data)]
        starts = [start for _, start, _ in iter_boxes(data)] + [len(data)]
        inside = [(a, b) for a in starts for b in starts if b > a
                  and hashlib.sha256(data[a:b]).hexdigest() == leaf.get("sha256")]
        lines.append(f"seq {seq}: listed as {player.listed_as.get(seq)}, "
                     f"{len(data)} bytes fetched, sha256 {hashlib.sha256(data).hexdigest()[:16]}; "
                     f"parts listed {sorted(player.parts_of.get(seq, ()))}; leaf {leaf}; boxes {boxes}; "
                     f"the leaf's bytes at {inside or 'nowhere'} in them")
    try:
        stats = requests.get(f"{base}/api/feeds", timeout=10).json()
    except (requests.RequestException, ValueError) as err:
        stats = repr(err)
    return "\n".join(lines) + f"\n/api/feeds: {stats}"


def _actors() -> list[dict]:
    import ray._private.state as state

    return [a for a in state.actors().values() if a["State"] == "ALIVE"]


def _victim(class_name: str, pipeline) -> dict | None:
    import ray

    found = [a for a in _actors() if a["ActorClassName"] == class_name]
    if class_name == "Transcoder":  # the member that holds the feed, not the one standing by
        index = pipeline.feed_placement(FEED)
        held = ray.get(pipeline.pool.member.remote(index), timeout=30)._actor_id.hex()
        found = [a for a in found if a["ActorID"] == held]
    if class_name == "Packager":  # the one publishing the feed, not its idle standby
        publishing = pipeline.publishing_packager(FEED)
        found = [a for a in found if publishing is not None and a["ActorID"] == publishing._actor_id.hex()]
    if class_name in ("FeedActor", "Edge"):  # the one reading the source, the edge that holds: not a standby
        holder = pipeline.holding_feed_actor(FEED) if class_name == "FeedActor" else pipeline.edge
        found = [a for a in found if holder is not None and a["ActorID"] == holder._actor_id.hex()]
    return min(found, key=lambda a: a["Pid"]) if found else None


def _state(base: str) -> str:
    """What to read when the stream does not come back: the feed as /api/feeds shows it, and
    every actor not alive."""
    import ray._private.state as state

    try:
        feed = requests.get(f"{base}/api/feeds", timeout=10).json()["feeds"]
    except (requests.RequestException, ValueError) as err:
        feed = repr(err)
    from collections import Counter

    every = list(state.actors().values())
    # counted: on one machine every node's HAProxy but one fails to bind the viewer port and is
    # started again and again by Serve
    down = Counter((a["ActorClassName"], a["State"], a["Address"]["NodeID"][:8]) for a in every if a["State"] != "ALIVE")
    alive = sorted((a["ActorClassName"], a["Address"]["NodeID"][:8]) for a in every if a["State"] == "ALIVE")
    return f"/api/feeds: {feed}\nactors not alive (how many): {dict(down)}\nalive: {alive}"


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory):
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from pipelines.live import start
    from pipelines.local import NODE_LOSS_ENV, use_local_serve_env

    assert not ray.is_initialized(), "own_cluster: this module must run before the shared Ray starts"
    use_local_serve_env()  # the demo's ingress, read by every node's Serve processes
    for key, value in NODE_LOSS_ENV.items():  # the GCS's, as cluster.yaml starts the head
        os.environ.setdefault(key, value)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    ray.init(address=cluster.address, namespace="orbitcast-chaos-test", log_to_driver=False)
    pipeline = None
    try:
        pipeline = start(small_config(tmp_path_factory.mktemp("chaos"), {"name": FEED, "source": SYNTH},
                                      transcoders=TRANSCODERS))
        assert pipeline.wait_playable(120), "the pipeline did not become playable"
        yield cluster, workers, pipeline
    finally:
        if pipeline is not None:
            pipeline.stop()
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


def test_a_player_sees_no_seq_lost_through_each_kind_of_actor_death(chaos, tmp_path):
    import ray

    cluster, workers, pipeline = chaos
    base = pipeline.url.rstrip("/")
    players = {rung: Follower(f"{base}/live/{FEED}/{rung}/") for rung in RUNGS}
    threads = [threading.Thread(target=p.run, daemon=True, name=f"player-{r}") for r, p in players.items()]
    for t in threads:
        t.start()

    def new_parts_since(t0: float) -> bool:
        return all(any(t > t0 for t in p.parts.values()) for p in players.values())

    faults: list[tuple[str, float]] = []
    try:
        wait_for("parts in both rungs", lambda: new_parts_since(time.time() - 1), timeout=60)
        time.sleep(SETTLE_S)
        for kind in KINDS:
            victim = _victim(kind, pipeline)
            assert victim is not None, f"no live {kind} actor"
            at = time.time()
            os.kill(victim["Pid"], signal.SIGKILL)
            faults.append((kind, at))
            try:
                wait_for(f"new parts in both rungs after the {kind} was killed", lambda: new_parts_since(at), timeout=RECOVERY_S)
            except AssertionError as err:
                raise AssertionError(f"{err}\n{_state(base)}") from None
            if kind == "Edge":  # how long it held new media while the replicas handed their windows over
                print(f"edge rebuilt from its replicas: {ray.get(pipeline.edge.stats.remote(), timeout=30)['rebuild']}")
            time.sleep(SETTLE_S)

        if NODE_LOSS:
            # The worker node that holds most of the pipeline's actors now, as a whole machine lost.
            held = {w.node_id: sum(a["Address"]["NodeID"] == w.node_id for a in _actors()) for w in workers}
            node = max(workers, key=lambda w: held[w.node_id])
            at = time.time()
            cluster.remove_node(node, allow_graceful=False)
            faults.append((f"worker node ({held[node.node_id]} actors)", at))
            try:
                wait_for("new parts in both rungs after a worker node was removed", lambda: new_parts_since(at),
                         timeout=2 * RECOVERY_S)
            except AssertionError as err:
                seen = {rung: (max(p.parts, default=None), p.reload_errors, p.last_error, p.problems[-3:])
                        for rung, p in players.items()}
                replicas = {}
                for _ in range(10):  # each replica's own view, as far as the ingress reaches them
                    try:
                        d = requests.get(f"{base}/api/delivery", timeout=5).json()
                        replicas[d["pid"]] = {k: d.get(k) for k in ("epoch", "cursor", "committed", "pending", "batches")}
                    except (requests.RequestException, ValueError):
                        pass
                try:
                    edge = ray.get(pipeline.edge.stats.remote(), timeout=10)
                    edge = {k: edge.get(k) for k in ("version", "rebuild", "followers_left_out", "receiver")}
                except ray.exceptions.RayError as e:
                    edge = repr(e)
                raise AssertionError(f"{err}\nremoved node {node.node_id[:8]}; per rung (newest part, reloads "
                                     f"retried, last failed reload, last problems): {seen}\nreplicas: {replicas}\n"
                                     f"edge: {edge}\n{_state(base)}") from None
            # found > 0: the edge went with every replica and took its inits from the archive
            print(f"edge inits from the archive: {ray.get(pipeline.edge.stats.remote(), timeout=30)['inits_recovered']}")
            time.sleep(2 * SETTLE_S)

    finally:  # the players stop however the test ends: their threads must not outlive it
        for p in players.values():
            p.stop.set()
        for t in threads:
            t.join(timeout=15)

    segment_s = pipeline.config.segment_duration
    ends = [at for _, at in faults[1:]] + [time.time()]
    for (kind, at), end in zip(faults, ends):
        print(f"{kind} at {at:.3f} (seq {int(at // segment_s)})")
        waits = {rung: p.longest_wait(at, end) for rung, p in players.items()}
        print(f"{kind:34s} longest wait for a part: "
              + ", ".join(f"{rung} {w * 1000:.0f} ms (first after {f * 1000:.0f} ms)" for rung, (w, f) in waits.items()
                          if f is not None))

    for rung, p in players.items():
        for uri, at in p.deferred.items():  # answered "not yet" (503, Retry-After): once more now
            data = p._get(uri)
            print(f"{rung}: {uri} answered 503 at {at:.3f}, then {'fetched' if data is not None else 'not'}")
            if data is not None and uri.count(".") == 1:  # a whole segment
                p.segments.setdefault(int(uri.split(".")[0]), data)
        assert len(p.segments) >= 20, (rung, len(p.segments))
        # A seq the player's playlists passed over was made if its URI still answers (from the
        # archive, once older than the window); its bytes are verified against the ledger below.
        for seq in p.missing():
            if p.passed_over(seq) and (data := p._get(f"{seq}.m4s")) is not None:
                p.segments[seq] = data
                print(f"{rung}: seq {seq} passed over by the player's playlists, fetched from the archive")
        missing = {seq: next((k for k, at in reversed(faults) if at < (seq + 1) * segment_s), "no fault")
                   for seq in p.missing()}
        # Whether each was ever listed (and with which parts), and what its fetches got, tell
        # a seq the edge never listed from one a replica would not serve.
        seen = {seq: (p.msn_of.get(seq), sorted(p.parts_of.get(seq, ())),
                      [x for x in p.problems if f" {seq}." in x or f"seq {seq} " in x][:4]) for seq in missing}
        assert not missing, (f"{rung}: seqs missing (the fault before each) {missing}, gaps listed {sorted(p.gaps)}; "
                             f"per seq (first listed at MSN, parts listed, problems): {seen}")
        assert p.problems == [], (f"{rung}: {p.problems[:10]}\nthe playlists around the first (when received):\n"
                                  + "\n---\n".join(p.evidence))
        print(f"{rung}: {len(p.segments)} segments and {len(p.parts)} parts fetched, {p.reload_errors} reloads retried")

    # Every whole segment fetched, against the ledger, as `orbitcast verify` checks a recording.
    for rung, p in players.items():
        assert p.init is not None
        seqs = sorted(p.segments)
        recording = tmp_path / f"{rung}.mp4"
        recording.write_bytes(p.init + b"".join(p.segments[s] for s in seqs))
        proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "verify", "--recording", str(recording),
                               "--ledger", f"{base}/ledger/{FEED}"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")})
        out = proc.stdout + proc.stderr
        failed = sorted({int(m) for m in re.findall(rf"FAILED {FEED}/{rung}/(\d+)", out)})
        assert proc.returncode == 0, (f"listed as (EXTINF, parts), bytes: "
                                      f"{[(s, p.listed_as.get(s), len(p.segments[s])) for s in failed]}\n"
                                      f"{_anatomy(base, rung, p, failed)}\npackager: "
                                      f"{ray.get(pipeline.packagers[FEED].stats.remote(), timeout=30)['counters']}"
                                      f"\n{out[-1500:]}")
        assert f"{len(seqs)}/{len(seqs)} segments verified" in out, out[-2000:]
