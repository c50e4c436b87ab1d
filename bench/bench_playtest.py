"""The playback test facility against the demo: `orbitcast playtest` (browsers under device
profiles + simulated LL-HLS viewers) on `orbitcast demo`'s pipeline, started here.

    .venv/bin/python -m bench.bench_playtest                                   # 60 s, 2 browsers, 100 viewers
    .venv/bin/python -m bench.bench_playtest --seconds 300 --browsers 4 --viewers 200   # the issue's goal
    .venv/bin/python -m bench.bench_playtest --url http://127.0.0.1:8000 --seconds 60   # a demo already running

The demo runs in this process (local Ray); the playtest runs as the `orbitcast playtest` command
in a process of its own, as a user runs it. The demo is started without the per-client limit on
held requests (`serve.max_held_per_client: 0`): every player here comes from one address, as
from behind a CDN. Writes bench/results/playtest-<time>/ (report.json, report.html, plots,
P.1203 inputs) and prints the summary table.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).with_name("results")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_playtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--browsers", type=int, default=2)
    p.add_argument("--viewers", type=int, default=100)
    p.add_argument("--profiles", default=None, help="default: console, 4g, 3g, stairs in turn")
    p.add_argument("--ramp", type=float, default=None)
    p.add_argument("--url", default=None, help="an orbitcast already serving at this base URL")
    p.add_argument("--feed", default="iss")
    p.add_argument("--port", type=int, default=8078)
    p.add_argument("--warmup", type=float, default=10.0, help="seconds of stream before the players join")
    args = p.parse_args(argv)
    out = RESULTS / f"playtest-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    with contextlib.ExitStack() as stack:
        base = args.url
        if base is None:
            from bench.demo_server import running_demo

            print(f"starting the demo pipeline on port {args.port} ...", flush=True)
            demo = stack.enter_context(running_demo(port=args.port))
            print(f"playable after {demo.startup_s:.1f} s at {demo.base}; warming up {args.warmup:g} s", flush=True)
            time.sleep(args.warmup)
            base = demo.base
        cmd = [str(Path(sys.executable).parent / "orbitcast"), "playtest", f"{base.rstrip('/')}/live/{args.feed}/master.m3u8",
               "--seconds", str(args.seconds), "--viewers", str(args.viewers), "--browsers", str(args.browsers),
               "--out", str(out / "report.json")]
        if args.profiles:
            cmd += ["--profiles", args.profiles]
        if args.ramp is not None:
            cmd += ["--ramp", str(args.ramp)]
        print(" ".join(cmd), flush=True)
        code = subprocess.run(cmd).returncode
    print(f"results in {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
