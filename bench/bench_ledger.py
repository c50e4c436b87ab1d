"""Ledger figures: appends per second and proof times at 1 million leaves (in memory and with
the pyarrow.fs store), restart (reload + O(n) rebuild), the restart of a live log (`--hours` of
one feed's three rungs, 1 s segments, a head signed each second, as the ledger actor keeps it),
and the verification time of a 10-minute recording (2 s segments x 3 renditions = 900 segments
of synthetic CMAF-shaped bytes).

    .venv/bin/python bench/bench_ledger.py [--leaves 1000000] [--hours 24] [--minutes 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import struct
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from nacl.signing import SigningKey

from orbitcast.ledger import FeedLedger, LeafFields, LogStore, MerkleTree, leaf_hash
from orbitcast.ledger.http_shapes import route
from orbitcast.ledger.verify import verify_recording, verify_stream
from orbitcast.segment import Segment

KEY = SigningKey(hashlib.sha256(b"bench").digest())
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
# Segment bytes per 2 s at a typical ladder: 0.8, 2.5 and 5 Mbit/s.
LADDER = {"360p": 200_000, "720p": 625_000, "1080p": 1_250_000}


def leaf_fields(n: int) -> list[LeafFields]:
    rends = list(LADDER)
    return [
        LeafFields.of("iss", rends[i % 3], i // 3, T0 + timedelta(seconds=2 * (i // 3)),
                      500_000 + i, hashlib.sha256(i.to_bytes(8, "big")).digest())
        for i in range(n)
    ]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def per_call_us(fn: Callable[[int], Any], args: list[int]) -> tuple[float, float]:
    times = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def bench_log(n: int, results: dict[str, Any]) -> None:
    fields = leaf_fields(n)
    rng = random.Random(1)
    picks = [rng.randrange(n) for _ in range(2000)]

    # Tree only: amortized O(1) appends of precomputed leaf hashes.
    hashes = [leaf_hash(f.encode()) for f in fields[:n]]
    tree = MerkleTree()
    dt, _ = timed(lambda: [tree.append_hash(h) for h in hashes])
    results["tree_append_hash_per_s"] = n / dt
    dt, built = timed(lambda: MerkleTree.from_leaf_hashes(hashes))
    results["tree_build_from_hashes_s"] = dt
    assert built.root() == tree.root()

    # The ledger in memory: encode leaf, index, tree.
    lg = FeedLedger("iss", KEY)
    dt, _ = timed(lambda: [lg.append(f) for f in fields])
    results["ledger_append_per_s_memory"] = n / dt
    dt, _ = timed(lambda: lg.sign_head(1_000))
    results["sign_head_ms"] = dt * 1e3
    med, p99 = per_call_us(lambda i: lg.proof(fields[i].rendition, fields[i].seq), picks)
    results["proof_us_median_memory"], results["proof_us_p99_memory"] = med, p99
    med, p99 = per_call_us(lambda i: tree.inclusion_proof(i), picks)
    results["audit_path_us_median"], results["audit_path_us_p99"] = med, p99
    med, p99 = per_call_us(lambda i: tree.consistency_proof(max(1, i), n), picks)
    results["consistency_us_median"], results["consistency_us_p99"] = med, p99
    med, p99 = per_call_us(lambda i: tree.root(max(1, i)), picks)
    results["prefix_root_us_median"] = med

    # With the store: one flushed record per append, then a restart.
    with tempfile.TemporaryDirectory() as tmp:
        store = LogStore(base=tmp)
        lg2 = FeedLedger("iss", KEY, store)
        dt, _ = timed(lambda: [lg2.append(f) for f in fields])
        results["ledger_append_per_s_store"] = n / dt
        lg2.sign_head(1_000)
        med, p99 = per_call_us(lambda i: lg2.proof(fields[i].rendition, fields[i].seq), picks)
        results["proof_us_median_store"], results["proof_us_p99_store"] = med, p99
        lg2.close()
        results["log_file_mb"] = (Path(tmp) / "iss.log").stat().st_size / 1e6
        dt, lg3 = timed(lambda: FeedLedger("iss", KEY, LogStore(base=tmp)))
        results["restart_reload_s"] = dt
        assert lg3.root() == lg.root() and lg3.latest_head is not None


def bench_live_restart(hours: float, results: dict[str, Any]) -> None:
    """A live feed's log: three leaves and one signed head per second; then a restart, which
    the packagers' segments (and the parts queued behind them) wait for."""
    seconds = int(hours * 3600)
    rends = list(LADDER)
    with tempfile.TemporaryDirectory() as tmp:
        lg = FeedLedger("iss", KEY, LogStore(base=tmp))
        for s in range(seconds):
            for r in rends:
                lg.append(LeafFields.of("iss", r, s, T0 + timedelta(seconds=s), 300_000,
                                        hashlib.sha256(b"%d/%s" % (s, r.encode())).digest()))
            lg.sign_head(1_000 * s)
        latest = lg.latest_head
        lg.close()
        dt, again = timed(lambda: FeedLedger("iss", KEY, LogStore(base=tmp)))
        assert again.latest_head == latest
        results["live_log_hours"] = hours
        results["live_log_restart_s"] = dt


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def fake_segment(rng: random.Random, size: int, parts: int) -> bytes:
    chunks = [box(b"styp", b"msdhmsdhcmfs")]
    for _ in range(parts):
        chunks += [box(b"moof", rng.randbytes(96)), box(b"mdat", rng.randbytes(size // parts))]
    return b"".join(chunks)


def bench_recording(minutes: float, results: dict[str, Any]) -> None:
    rng = random.Random(2)
    count = int(minutes * 60 / 2)
    lg = FeedLedger("iss", KEY)
    segments: dict[tuple[str, int], Segment] = {}
    for seq in range(count):
        for r, size in LADDER.items():
            s = Segment("iss", r, seq, 2.0 * seq, 2.0, T0 + timedelta(seconds=2 * seq),
                        fake_segment(rng, size + rng.randrange(1000), parts=4))
            segments[(r, seq)] = s
            lg.append(s)
    lg.sign_head(5_000)
    total = sum(s.size for s in segments.values())
    results["recording_segments"] = len(segments)
    results["recording_bytes_mb"] = total / 1e6

    def master() -> str:
        return "#EXTM3U\n" + "".join(f"#EXT-X-STREAM-INF:BANDWIDTH=1\n{r}/index.m3u8\n" for r in LADDER)

    def media(r: str) -> str:
        out = ["#EXTM3U", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
        for seq in range(count):
            pdt = segments[(r, seq)].program_date_time.isoformat(timespec="milliseconds")
            out += [f"#EXT-X-PROGRAM-DATE-TIME:{pdt}", "#EXTINF:2.0,", f"{seq}.m4s"]
        return "\n".join(out) + "\n"

    def fetch(url: str) -> bytes:
        parts = urlsplit(url)
        if parts.path.startswith("/ledger/"):
            resp = route({"iss": lg}, KEY.verify_key, parts.path, dict(parse_qsl(parts.query)))
            if resp.status != 200:
                raise IOError(resp.status)
            return json.dumps(resp.body).encode()
        bits = parts.path.split("/")
        if bits[-1] == "master.m3u8":
            return master().encode()
        if bits[-1] == "index.m3u8":
            return media(bits[-2]).encode()
        return segments[(bits[-2], int(bits[-1][:-4]))].data

    # Stream verification (HTTP replaced by an in-process call: this is the verifier's CPU).
    dt, report = timed(lambda: verify_stream("http://h/live/iss/master.m3u8", fetch, KEY.verify_key))
    assert report.ok and len(report.results) == len(segments), report.table()[-500:]
    results["verify_stream_900_s"] = dt

    # Recording verification: one file per rendition (what `orbitcast receive` writes).
    head = lg.latest_head
    entries = lg.leaves(0, head.tree_size)
    init = box(b"ftyp", b"iso6cmfc") + box(b"moov", b"\x00" * 700)
    spent = 0.0
    checked = 0
    for r in LADDER:
        data = init + b"".join(segments[(r, s)].data for s in range(count))
        dt, rep = timed(lambda: verify_recording(data, entries, head, KEY.verify_key))
        assert rep.ok and len(rep.results) == count, rep.table()[-500:]
        spent += dt
        checked += len(rep.results)
    results["verify_recordings_3x_s"] = spent
    results["verify_recordings_segments"] = checked
    dt, _ = timed(lambda: hashlib.sha256(memoryview(data)).digest())
    results["sha256_one_1080p_file_s"] = dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--hours", type=float, default=24.0, help="of a live feed's log, for its restart")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    results: dict[str, Any] = {"leaves": args.leaves, "python": sys.version.split()[0]}
    bench_log(args.leaves, results)
    bench_live_restart(args.hours, results)
    bench_recording(args.minutes, results)
    width = max(map(len, results))
    for k, v in results.items():
        print(f"{k.ljust(width)}  {v:,.2f}" if isinstance(v, float) else f"{k.ljust(width)}  {v}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
