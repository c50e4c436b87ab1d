"""Time-shift playlist answer time: a one-hour VOD media playlist (3600 segments of 1 s per rung)
from a catalog query, as a Delivery replica answers it (`Timeshift.media`: parse the window,
query the catalog in a worker thread, merge the live window, render).

    .venv/bin/python -m bench.bench_timeshift                 # 3 rungs, 24 h in the day partition
    .venv/bin/python -m bench.bench_timeshift --hours 6 --runs 100

The catalog is written as the packager writes it, in a temporary folder: flush files of 15 rows
(5 segments x 3 rungs) with a 600-byte sealed message per row (what a row carries for the
edge), then two layouts are timed:
- `compacted`: the day's rows in hour files (what compaction leaves);
- `between rounds`: the last minute still in flush files (12), as just before a compaction
  round (each packager folds its flush files every `archive.maintain_every_s`, 60 s);
- `not compacted`: the whole hour in flush files (720): what compaction saves.
Results are printed and written to bench/results/timeshift-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

from orbitcast.catalog import SCHEMA, Catalog
from orbitcast.delivery.playlists import iso_ms
from orbitcast.delivery.policy import PlaylistPolicy
from orbitcast.delivery.timeshift import Timeshift, catalog_rows
from orbitcast.delivery.window import LiveWindow
from orbitcast.store import Store

RUNGS = ("720p", "480p", "360p")
DAY = datetime(2025, 1, 31, tzinfo=timezone.utc)
TAG = "0123456789ab"


def rows(first: int, count: int) -> pa.Table:
    seqs = list(range(first, first + count))
    n = len(seqs) * len(RUNGS)
    return pa.Table.from_pydict({
        "feed": ["iss"] * n,
        "rendition": [r for _ in seqs for r in RUNGS],
        "seq": [s for s in seqs for _ in RUNGS],
        "start": [float(s) for s in seqs for _ in RUNGS],
        "duration": [1.0] * n,
        "program_date_time": [datetime.fromtimestamp(s, tz=timezone.utc) for s in seqs for _ in RUNGS],
        "bytes": [250_000] * n,
        "bitrate": [2_000_000] * n,
        "digest": ["ab" * 32] * n,
        "init": [TAG] * n,
        "blob_ids": [[f"{s:032x}"] for s in seqs for _ in RUNGS],
        "sealed": [[os.urandom(600)] for _ in range(n)],
        "removed_at": pa.nulls(n, SCHEMA.field("removed_at").type),
        **{name: pa.nulls(n, SCHEMA.field(name).type) for name in ("joules", "energy_source", "energy_error")},
    }, schema=SCHEMA)


def build(root: Path, hours: float, flushed_tail_s: int) -> Catalog:
    """`hours` of one day; the last `flushed_tail_s` seconds left in 15-row flush files."""
    cat = Catalog(Store(str(root)), flush_every=15)
    first = int(DAY.timestamp())
    total = int(hours * 3600)
    compacted = total - flushed_tail_s
    for chunk in range(first, first + compacted, 3600):
        cat._write_partitions(rows(chunk, min(3600, first + compacted - chunk)), "part")  # noqa: SLF001
    cat.compact("iss", today="2099-01-01")  # the day folded into hour files
    for s in range(first + compacted, first + total, 5):
        cat._write_partitions(rows(s, 5), "part")  # noqa: SLF001 - as the packager's flushes do
    return cat


def time_it(ts: Timeshift, params: list[tuple[str, str]], runs: int) -> dict:
    async def once() -> tuple[float, int]:
        started = time.perf_counter()
        answer = await ts.media("iss", "720p", params)
        assert answer.status == 200, answer.body
        return time.perf_counter() - started, len(answer.body)

    async def main() -> list[tuple[float, int]]:
        return [await once() for _ in range(runs)]

    results = asyncio.run(main())
    ms = sorted(t * 1000 for t, _ in results)
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "max_ms": round(ms[-1], 2), "bytes": results[0][1], "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0, help="hours in the day partition (>= 2)")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    policy = PlaylistPolicy(segment_duration=1.0, part_target=0.2, part_hold_back=0.6, window=12, keep=24,
                            parts_per_segment=5)
    report: dict = {"hours_in_day": args.hours, "rungs": len(RUNGS), "segment_duration_s": 1.0}
    end = DAY + timedelta(hours=args.hours)
    window = [("start", iso_ms(end - timedelta(hours=1))), ("end", iso_ms(end))]
    for layout, tail in (("compacted", 0), ("between rounds", 60), ("not compacted", 3600)):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            cat = build(Path(tmp), args.hours, tail)
            files = sum(len(v) for v in cat.files("iss").values())
            built = time.perf_counter() - started
            ts = Timeshift(LiveWindow(policy), catalog_rows(Catalog(Store(tmp))), None, 1.0, 6 * 3600,
                           lambda: (end + timedelta(minutes=1)).timestamp())
            media = time_it(ts, window, args.runs)
            report[layout] = {"files": files, "build_s": round(built, 1), "one_hour_media_playlist": media}
            print(f"{layout:14s} {files:4d} files  1-hour media playlist ({media['bytes']} bytes): "
                  f"p50 {media['p50_ms']} ms, p95 {media['p95_ms']} ms, max {media['max_ms']} ms")
    out = Path(__file__).parent / "results" / f"timeshift-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
