"""What a low-latency player sees when one process of the pipeline dies (issue 11's figures).

The demo runs in this process (local Ray + Serve). One player follows a rung as hls.js does in
low-latency mode: a blocking reload for the part after the newest it has (`_HLS_msn`/`_HLS_part`,
delta updates), again as soon as each answer comes. Then each kind of actor is killed in turn
with SIGKILL (as the OOM killer or a crash would: no clean-up), one at a time, with time to
settle between kills. For each kill the bench reports:

- the longest wait for a new part from the kill on, against PART-HOLD-BACK (a player holding
  that much buffer stalls when the wait is longer), and the time to the first new part;
- failed reloads (errors, 5xx) the player got;
- seqs lost (listed as EXT-X-GAP, or missing in the MSN sequence) and seqs listed complete
  and later listed as a gap (a listing taken back), over the whole run.

    .venv/bin/python -m bench.bench_faults [--rung 360p] [--settle 20] [--replicas 2]
        [--kinds packager,edge] [--repeat 3]

Results are printed and written to bench/results/faults-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
# class names as Ray lists them; one of each is killed (the busiest alive, `victim`)
KINDS = [
    ("transcoder member", "Transcoder"),
    ("packager", "Packager"),
    ("edge", "Edge"),
    ("gateway", "GatewayActor"),
    ("ledger", "LedgerActor"),
    ("feed actor", "FeedActor"),
    ("sender inbox", "SenderInbox"),
    ("Delivery replica", "ServeReplica:orbitcast:Delivery"),
]
_PART = re.compile(r'#EXT-X-PART:[^\n]*URI="(\d+)\.(\d+)\.m4s"')
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\d+)\.(\d+)\.m4s"')
_HOLD = re.compile(r"PART-HOLD-BACK=([0-9.]+)")


@dataclass
class Player:
    """One LL-HLS follower: notes when each new part first appears and every seq's listing."""

    url: str
    parts: dict[tuple[int, int], float] = field(default_factory=dict)  # (seq, index) -> first seen
    complete: set[int] = field(default_factory=set)  # seqs ever listed with media
    gaps: set[int] = field(default_factory=set)  # seqs ever listed as EXT-X-GAP
    taken_back: set[int] = field(default_factory=set)  # listed with media, later as a gap
    errors: list[tuple[float, str]] = field(default_factory=list)
    hold_back: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        query = ""
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url + query, timeout=10) as r:
                    text = r.read().decode()
            except (urllib.error.URLError, OSError) as err:
                self.errors.append((time.time(), str(getattr(err, "code", "")) or type(err).__name__))
                time.sleep(0.1)
                query = ""
                continue
            self._note(text)
            hint = _HINT.search(text)
            query = f"?_HLS_msn={hint.group(1)}&_HLS_part={hint.group(2)}&_HLS_skip=v2" if hint else ""

    def _note(self, text: str) -> None:
        now = time.time()
        if not self.hold_back and (m := _HOLD.search(text)):
            self.hold_back = float(m.group(1))
        for seq, index in _PART.findall(text):
            self.parts.setdefault((int(seq), int(index)), now)
        first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
        skipped = re.search(r"#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)", text)
        msn = first + (int(skipped.group(1)) if skipped else 0)
        gap = False
        for line in text.splitlines():
            if line == "#EXT-X-GAP":
                gap = True
            elif line.endswith(".m4s") and not line.startswith("#"):
                seq = int(line.split(".")[0])
                if seq != msn:
                    self.errors.append((now, f"seq {seq} listed at MSN {msn}"))
                (self.gaps if gap else self.complete).add(seq)
                if gap and seq in self.complete:
                    self.taken_back.add(seq)
                gap = False
                msn += 1

    def waits_after(self, t0: float, t1: float) -> tuple[float, float | None]:
        """(longest wait for a new part within [t0, t1], first new part after t0 - t0)."""
        times = sorted(t for t in self.parts.values() if t0 <= t <= t1)
        if not times:
            return t1 - t0, None
        edges = [t0, *times, t1]  # a wait still going on at t1 counts too
        return max(b - a for a, b in zip(edges, edges[1:])), times[0] - t0


def publishing_packager(pipeline, feed: str) -> int | None:
    """The pid of the packager that publishes `feed` now (its standby idle)."""
    import ray

    handle = pipeline.publishing_packager(feed)
    return ray.get(handle.stats.remote(), timeout=30)["pid"] if handle is not None else None


def holding_feed_actor(pipeline, feed: str) -> int | None:
    """The pid of the FeedActor that reads `feed`'s source now (its standby idle)."""
    return pid_of(pipeline.holding_feed_actor(feed))


def pid_of(handle) -> int | None:
    import ray._private.state as state

    if handle is None:
        return None
    actor = state.actors().get(handle._actor_id.hex())
    return actor["Pid"] if actor and actor["State"] == "ALIVE" else None


def victim(class_name: str) -> int | None:
    """The pid of the busiest live actor of `class_name` (most CPU time: the transcoder member
    that holds the feed, the packager that publishes it, not a standby), from its process title
    (`ray::Edge`, or `ray::Edge.method` while it runs one; the local demo runs without Ray's
    dashboard, which the state API needs)."""
    import psutil

    found: list[tuple[float, int]] = []
    for proc in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
        title = (proc.info["cmdline"] or [""])[0].split(" ")[0]
        if title == f"ray::{class_name}" or title.startswith(f"ray::{class_name}."):
            cpu = proc.info["cpu_times"]
            found.append((cpu.user + cpu.system if cpu else 0.0, proc.info["pid"]))
    return max(found)[1] if found else None


def run(base: str, feed: str, rung: str, settle: float, segment_s: float = 1.0,
        kinds: list[tuple[str, str]] = KINDS, pipeline=None) -> dict:
    player = Player(f"{base}/live/{feed}/{rung}/index.m3u8")
    thread = threading.Thread(target=player.run, daemon=True)
    thread.start()
    time.sleep(settle)
    t0 = time.time()
    quiet_wait, _ = player.waits_after(t0 - settle / 2, t0)
    print(f"before any kill: longest wait for a part {quiet_wait * 1000:.0f} ms "
          f"(PART-HOLD-BACK {player.hold_back:.3f} s)", flush=True)
    report: dict = {"rung": rung, "hold_back_s": player.hold_back, "quiet_longest_wait_s": round(quiet_wait, 3),
                    "kills": []}
    for label, class_name in kinds:
        if pipeline is not None and class_name in ("Packager", "FeedActor", "Edge"):  # not the idle standby
            pid = (publishing_packager(pipeline, feed) if class_name == "Packager" else
                   holding_feed_actor(pipeline, feed) if class_name == "FeedActor" else pid_of(pipeline.edge))
        else:
            pid = victim(class_name)
        if pid is None:
            print(f"{label}: none running, skipped", flush=True)
            continue
        errors_before = len(player.errors)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        time.sleep(settle)
        longest, first = player.waits_after(killed_at, time.time())
        errors = player.errors[errors_before:]
        row = {"kind": label, "class": class_name, "pid": pid, "killed_at": round(killed_at, 3), "longest_wait_s": round(longest, 3),
               "first_part_after_s": None if first is None else round(first, 3), "failed_reloads": len(errors),
               "errors": sorted({e for _, e in errors})[:5],
               "stall_for_hold_back_player": longest > player.hold_back}
        report["kills"].append(row)
        print(f"{label:18} killed: longest wait {longest * 1000:7.0f} ms, first new part after "
              f"{'-' if first is None else f'{first * 1000:.0f} ms'}, failed reloads {len(errors)} {row['errors']}",
              flush=True)
    player.stop.set()
    thread.join(timeout=15)
    span = range(min(player.complete | player.gaps), max(player.complete) + 1) if player.complete else range(0)
    lost = sorted(s for s in span if s not in player.complete)
    # A seq is numbered from its media time (floor(t / segment duration), with the feed's timeline
    # on the wall clock): the kill just before a lost seq's start is the one that lost it.
    for seq in lost:
        start = seq * segment_s
        before = [k for k in report["kills"] if k["killed_at"] <= start + segment_s]
        report.setdefault("lost_after", {})[str(seq)] = before[-1]["kind"] if before else "before any kill"
    report.update({"seqs_seen": len(span), "lost": lost, "taken_back": sorted(player.taken_back),
                   "listing_errors": [e for _, e in player.errors if e.startswith("seq ")][:10]})
    print(f"\nover the run: {len(span)} seqs, lost {len(lost)} {report.get('lost_after', {})}, listed then taken back "
          f"{len(player.taken_back)}, MSN errors {len(report['listing_errors'])}", flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed", default="iss")
    parser.add_argument("--rung", default="360p")
    parser.add_argument("--port", type=int, default=8079)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after each kill (and before the first)")
    parser.add_argument("--replicas", type=int, default=None, help="serve.min_replicas (default: the config's)")
    parser.add_argument("--kinds", default=None,
                        help="comma-separated labels to kill, in this order (default: every kind: "
                             + ", ".join(label for label, _ in KINDS) + ")")
    parser.add_argument("--repeat", type=int, default=1, help="kill each kind this many times (one after the other)")
    parser.add_argument("--no-standby", action="store_true",
                        help="no standby packager, feed reader or edge (standby_packagers, standby_feeds, "
                             "standby_edge: false): their restart is waited for")
    args = parser.parse_args()
    by_label = dict(KINDS)
    labels = [k.strip() for k in args.kinds.split(",")] if args.kinds else list(by_label)
    unknown = [k for k in labels if k not in by_label]
    if unknown:
        parser.error(f"unknown kinds {unknown}; known: {sorted(by_label)}")
    kinds = [(label, by_label[label]) for label in labels for _ in range(args.repeat)]
    from bench.demo_server import running_demo

    serve = {"min_replicas": args.replicas, "max_replicas": max(4, args.replicas)} if args.replicas else None
    updates = {"standby_packagers": False, "standby_feeds": False, "standby_edge": False} if args.no_standby else {}
    with running_demo(port=args.port, serve_settings=serve, **updates) as demo:
        print(f"demo playable after {demo.startup_s:.1f} s at {demo.base}", flush=True)
        report = run(demo.base, args.feed, args.rung, args.settle, demo.pipeline.config.segment_duration, kinds, demo.pipeline)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"faults-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
