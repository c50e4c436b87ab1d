"""The live pipeline with the demo ladder on local Ray for a while: does it keep real time?

Samples the newest segment's lag behind the wall clock (from /api/feeds) and the machine's CPU
use (from /proc/stat) every few seconds, and prints the first and last minute's averages.

    .venv/bin/python -m bench.bench_live --seconds 300
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request


def cpu_times() -> tuple[float, float]:
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields), idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--port", type=int, default=8077)
    parser.add_argument("--every", type=float, default=5.0)
    args = parser.parse_args()

    import ray

    from orbitcast.config import OrbitcastConfig
    from pipelines.live import start

    cfg = OrbitcastConfig().model_copy(update={"store": "/tmp/orbitcast-bench-store"})
    cfg = cfg.model_copy(update={"serve": cfg.serve.model_copy(update={"port": args.port}),
                                 "threema": cfg.threema.model_copy(update={"keys_dir": "/tmp/orbitcast-bench-keys"})})
    ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, log_to_driver=False)
    t0 = time.monotonic()
    pipeline = start(cfg)
    pipeline.wait_playable(120)
    print(f"first segment playable after {time.monotonic() - t0:.1f} s", flush=True)
    samples: list[tuple[float, float, float]] = []  # (elapsed, lag, cpu%)
    last = cpu_times()
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        time.sleep(args.every)
        total, idle = cpu_times()
        busy = 100.0 * (1 - (idle - last[1]) / max(1e-9, total - last[0]))
        last = (total, idle)
        with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/feeds", timeout=10) as r:
            feed = json.load(r)["feeds"][0]
        if feed.get("latency") is not None:
            samples.append((time.monotonic() - t0, feed["latency"], busy))
            print(f"t={samples[-1][0]:6.1f}s  lag={feed['latency']:6.2f}s  cpu={busy:5.1f}%  seq={feed['last_segment']['seq']}", flush=True)
    first = [s for s in samples if s[0] <= samples[0][0] + 60]
    final = [s for s in samples if s[0] >= samples[-1][0] - 60]
    for name, part in (("first minute", first), ("last minute", final)):
        print(f"{name}: lag median {statistics.median(s[1] for s in part):.2f} s, max {max(s[1] for s in part):.2f} s; "
              f"CPU {statistics.mean(s[2] for s in part):.0f}% of {os.cpu_count()} cores")
    seal = sorted(s for p in pipeline.packagers.values() for s in ray.get(p.stats.remote())["seal_seconds"])
    arrival = ray.get(pipeline.edge.stats.remote())["arrival_lag"]
    if seal:
        print(f"packager seal+send per part or segment: median {1000 * statistics.median(seal):.1f} ms, "
              f"p99 {1000 * seal[int(0.99 * (len(seal) - 1))]:.1f} ms")
    for kind, name in (("part", "part"), ("media", "segment")):
        lag = sorted(arrival[kind])
        if lag:
            print(f"edge arrival after the {name}'s end: median {statistics.median(lag):.3f} s, "
                  f"p99 {lag[int(0.99 * (len(lag) - 1))]:.3f} s")
    pipeline.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
