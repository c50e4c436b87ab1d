"""Held blocking reloads through the death of a Delivery replica (issue 11).

The demo runs in this process (local Ray + Serve, two Delivery replicas behind Serve's HAProxy
ingress). Each round holds `--held` blocking playlist reloads for the segment after the one in
progress (answered 1-2 s later), each on a connection of its own, then kills one Delivery
replica with SIGKILL while they wait, and counts how each request ended: 200 (answered by the
replica that lived, or sent to it again by HAProxy), 5xx, or a connection error. Between
rounds Serve starts a replica in place of the dead one.

    .venv/bin/python -m bench.bench_replica_kill [--held 40] [--rounds 5] [--settle 12]

Results are printed and written to bench/results/replica-kill-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import requests

RESULTS = Path(__file__).parent / "results"
REPLICA = "ServeReplica:orbitcast:Delivery"


def _replicas() -> list[dict]:
    import ray._private.state as state

    return [a for a in state.actors().values() if a["State"] == "ALIVE" and a["ActorClassName"] == REPLICA]


def one_round(playlist: str, held: int, label: str) -> dict:
    text = requests.get(playlist, timeout=10).text
    msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    listed = len(re.findall(r"^#EXTINF", text, re.MULTILINE))
    target = msn + listed + 1  # the segment after the one in progress
    ended: list[str] = []

    def hold(i: int) -> None:
        try:  # a session each: a connection each, spread over the replicas
            r = requests.Session().get(f"{playlist}?_HLS_msn={target}&_HLS_part=0&n={label}-{i}", timeout=20)
            ended.append(str(r.status_code))
        except requests.RequestException as err:
            ended.append(type(err).__name__)

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(held)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # all held by now
    replicas = _replicas()
    victim = min(replicas, key=lambda a: a["Pid"])
    os.kill(victim["Pid"], signal.SIGKILL)
    for t in threads:
        t.join()
    return {"replicas": len(replicas), "ended": dict(Counter(ended))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=12.0, help="seconds before the first round and between rounds")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    from bench.demo_server import running_demo

    rounds = []
    with running_demo(port=args.port) as demo:
        playlist = f"{demo.base}/live/{demo.pipeline.config.feeds[0].name}/360p/index.m3u8"
        time.sleep(args.settle)
        for n in range(args.rounds):
            result = one_round(playlist, args.held, str(n))
            rounds.append(result)
            print(f"round {n}: {result['replicas']} replicas before the kill, held requests ended {result['ended']}",
                  flush=True)
            time.sleep(args.settle)
    answered = sum(r["ended"].get("200", 0) for r in rounds)
    print(f"{answered} of {args.held * args.rounds} held requests answered 200")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"replica-kill-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"held": args.held, "rounds": rounds, "answered": answered}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
