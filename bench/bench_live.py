"""The live pipeline with the demo ladder on local Ray for a while: does it keep real time?

Samples the newest segment's lag behind the wall clock (from /api/feeds) and the machine's CPU
use (from /proc/stat) every few seconds, and prints the first and last minute's averages.
`--hog N` takes N cores (or a fraction of one) away from `--hog-from` seconds on, with busy
loops at this process's priority (as another program on the host would), to see the ladder's
overload steps (`ladder.overload`, docs/architecture.md) at work; `--no-overload` turns them off.

    .venv/bin/python -m bench.bench_live --seconds 300
    .venv/bin/python -m bench.bench_live --seconds 180 --hog 0.5
    .venv/bin/python -m bench.bench_live --seconds 180 --hog 0.5 --no-overload
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
import urllib.request


def cpu_times() -> tuple[float, float]:
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields), idle


def hog(until: float, share: float) -> None:
    """Keep `share` of a core busy (in 10 ms periods) until `until`."""
    while (start := time.monotonic()) < until:
        while time.monotonic() < start + 0.01 * share:
            pass
        time.sleep(max(0.0, start + 0.01 - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--port", type=int, default=8077)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--hog", type=float, default=0, help="cores to keep busy from --hog-from on (1.5: one and a half)")
    parser.add_argument("--hog-from", type=float, default=30.0, help="seconds after the first segment")
    parser.add_argument("--no-overload", action="store_true", help="no faster presets when the encoders fall behind")
    args = parser.parse_args()

    import ray

    from orbitcast.config import OrbitcastConfig
    from pipelines.live import start

    cfg = OrbitcastConfig().model_copy(update={"store": "/tmp/orbitcast-bench-store"})
    cfg = cfg.model_copy(update={"serve": cfg.serve.model_copy(update={"port": args.port}),
                                 "threema": cfg.threema.model_copy(update={"keys_dir": "/tmp/orbitcast-bench-keys"})})
    if args.no_overload:
        off = cfg.ladder.overload.model_copy(update={"presets": ()})
        cfg = cfg.model_copy(update={"ladder": cfg.ladder.model_copy(update={"overload": off})})
    ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, log_to_driver=False)
    t0 = time.monotonic()
    pipeline = start(cfg)
    pipeline.wait_playable(120)
    print(f"first segment playable after {time.monotonic() - t0:.1f} s", flush=True)
    samples: list[tuple[float, float, float]] = []  # (elapsed, lag, cpu%)
    last = cpu_times()
    end = time.monotonic() + args.seconds
    hogs = []
    whole, rest = divmod(args.hog, 1.0)
    for share in [1.0] * int(whole) + ([rest] if rest else []):
        hogs.append(multiprocessing.get_context("spawn").Process(target=hog, args=(end, share), daemon=True))
    hog_at = time.monotonic() + args.hog_from
    while time.monotonic() < end:
        time.sleep(args.every)
        if hogs and time.monotonic() >= hog_at and not hogs[0].is_alive() and hogs[0].exitcode is None:
            for h in hogs:
                h.start()
            print(f"busy loops started: {args.hog:g} core(s)", flush=True)
        total, idle = cpu_times()
        busy = 100.0 * (1 - (idle - last[1]) / max(1e-9, total - last[0]))
        last = (total, idle)
        with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/feeds", timeout=10) as r:
            feed = json.load(r)["feeds"][0]
        if feed.get("latency") is not None:
            samples.append((time.monotonic() - t0, feed["latency"], busy))
            enc = feed.get("encoders") or {}
            faster = sorted(set((enc.get("faster") or {}).values())) or [enc.get("preset")]
            print(f"t={samples[-1][0]:6.1f}s  lag={feed['latency']:6.2f}s  cpu={busy:5.1f}%  seq={feed['last_segment']['seq']}"
                  f"  preset={','.join(map(str, faster))}", flush=True)
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
