"""Held requests on one replica's HTTP server alone: the floor under bench_delivery's held figure.

A child process runs what a Delivery replica runs for /live/ (uvicorn with httptools on uvloop,
`LiveHTTP` over a `ReplicaState`), without Ray, HAProxy or a pipeline: a small window is filled
in by hand and a request to /apply adds the next part. This process opens `--held` keep-alive
connections, sends each a blocking playlist request for that part (`_HLS_skip=v2`, as hls.js
asks), then asks for the part to be applied, and times each answer's first byte against its
`Orbitcast-Ready-At`. Each run is a fresh server with three rounds; runs alternate between held
answers written whole (whole_answer.py, shipped) and through ASGI (`ORBITCAST_WHOLE_ANSWERS=0`).

    .venv/bin/python -m bench.bench_held --held 500 --runs 8
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
import urllib.request
from datetime import datetime, timedelta, timezone

from bench.bench_delivery import _Held
from pipelines.local import free_port

S = 850_000_000
D, PD, PPS = 2.0, 0.5, 4
T0 = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _serve(port: int, whole: bool) -> None:
    os.environ["ORBITCAST_WHOLE_ANSWERS"] = "1" if whole else "0"
    import uvicorn

    from orbitcast.delivery.http_metrics import ReplicaMetrics
    from orbitcast.delivery.live_http import LiveHTTP
    from orbitcast.delivery.playlists import RenditionInfo
    from orbitcast.delivery.policy import PlaylistPolicy
    from orbitcast.delivery.replica import ReplicaState
    from orbitcast.delivery.updates import Batch
    from orbitcast.delivery.window import InitUpdate, PartUpdate, SegmentUpdate
    from orbitcast.segment import Part, Segment

    policy = PlaylistPolicy(segment_duration=D, part_target=PD, part_hold_back=3 * PD, window=4, keep=6,
                            parts_per_segment=PPS)
    state = ReplicaState(policy)
    version = 0

    def part(seq: int, index: int) -> Part:
        start = seq * D + index * PD
        return Part("iss", "360p", seq, index, start, PD, index == 0, T0 + timedelta(seconds=start), b"p" * 20_000)

    def apply(*updates: object) -> None:
        nonlocal version
        version += 1
        state.apply(Batch("edge", version, list(updates), False, {}))

    apply(InitUpdate("iss", RenditionInfo("360p", 640, 360, 700_000, 650_000, "avc1.64001e,mp4a.40.2", 30.0), b"init"))
    for i in range(PPS):
        apply(PartUpdate(part(S, i)))
    apply(SegmentUpdate(Segment("iss", "360p", S, S * D, D, T0 + timedelta(seconds=S * D), b"s" * 80_000)),
          PartUpdate(part(S + 1, 0)))
    nxt = 1

    async def control(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        nonlocal nxt
        if scope["path"] == "/apply":
            apply(PartUpdate(part(S + 1, nxt)))
            nxt += 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    live = LiveHTTP(state, control, D, metrics=ReplicaMetrics())
    uvicorn.run(live, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off",
                loop="uvloop", http="httptools")


async def _rounds(port: int, held: int, rounds: int) -> list[float]:
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(_Held, "127.0.0.1", port))[1] for _ in range(held)]
    await asyncio.gather(*(c.ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") for c in conns))
    p99s = []
    for index in range(1, rounds + 1):
        ask = f"GET /live/iss/360p/index.m3u8?_HLS_msn={S + 1}&_HLS_part={index}&_HLS_skip=v2 HTTP/1.1\r\nHost: x\r\n\r\n"
        waits = [c.ask(ask.encode()) for c in conns]
        await asyncio.sleep(0.3)
        await loop.run_in_executor(None, lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/apply").read())
        await asyncio.wait_for(asyncio.gather(*waits), 30)
        delays = sorted((c.first_byte_at - float(c.response()[2]["orbitcast-ready-at"])) * 1000 for c in conns)
        p99s.append(delays[int(0.99 * (len(delays) - 1))])
    for c in conns:
        assert c.transport is not None
        c.transport.close()
    return p99s


def run(whole: bool, held: int, rounds: int) -> list[float]:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, whole), daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        return asyncio.run(_rounds(port, held, rounds))
    finally:
        server.terminate()
        server.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", type=int, default=500)
    parser.add_argument("--runs", type=int, default=8, help="fresh servers, alternating whole and ASGI")
    parser.add_argument("--rounds", type=int, default=3, help="parts released per server")
    args = parser.parse_args()
    got: dict[str, list[float]] = {"whole": [], "asgi": []}
    for i in range(args.runs):
        way = "whole" if i % 2 == 0 else "asgi"
        p99s = run(way == "whole", args.held, args.rounds)
        got[way].extend(p99s)
        print(f"run {i} ({way}): p99 per round {', '.join(f'{p:.1f}' for p in p99s)} ms", flush=True)
    for way, p99s in got.items():
        if p99s:
            print(f"{way}: {args.held} held, p99 per round: median {statistics.median(p99s):.1f} ms, "
                  f"best {min(p99s):.1f}, worst {max(p99s):.1f} ms over {len(p99s)} rounds")


if __name__ == "__main__":
    main()
