"""`make bench`: every benchmark, short settings; each module can run alone with longer ones."""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    ["bench.bench_ladder", "--seconds", "20"],
    ["bench.bench_sealing"],
    ["bench.bench_ledger"],
    ["bench.bench_clock", "--seconds", "20"],
    ["bench.bench_clock_ray", "--seconds", "60"],
    ["bench.bench_live", "--seconds", "120"],
    ["bench.bench_delivery", "--seconds", "5", "--rounds", "3"],
    ["bench.bench_held", "--runs", "4"],
    ["bench.bench_replica_kill", "--rounds", "3"],
    ["bench.bench_latency", "--seconds", "60"],
    ["bench.bench_codecs", "--seconds", "5"],
    ["bench.bench_ingest", "--seconds", "10"],
    ["bench.bench_timeshift", "--hours", "6", "--runs", "30"],
    ["bench.bench_vod", "--seconds", "30"],
]


def main() -> int:
    failed = 0
    for module, *args in BENCHES:
        print(f"== {module} {' '.join(args)}", flush=True)
        failed += subprocess.run([sys.executable, "-m", module, *args]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
