"""What metrics cost: recording one request on a replica's event loop (without CMCD, and with
the three CMCD headers hls.js sends), a replica's snapshot, and a scrape's merge and render
over several replicas. Pure Python, no Ray: `.venv/bin/python bench/bench_metrics.py`."""

from __future__ import annotations

import argparse
import json
import time
import uuid

from orbitcast.delivery.http_metrics import ReplicaMetrics
from orbitcast.metrics import MetricsHub, render

PLAIN = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome"),
         (b"accept", b"*/*"), (b"x-forwarded-for", b"127.0.0.1")]


def hls_js_headers(sid: str, i: int) -> list[tuple[bytes, bytes]]:
    """CMCD as hls.js 1.7 sends it with `useHeaders` on a part request; bl and mtp change."""
    return [*PLAIN,
            (b"cmcd-object", b"br=630,d=200,ot=av,tb=2200"),
            (b"cmcd-request", b"bl=%d,mtp=%d,nor=\"%d.1.m4s\"" % (100 * (i % 40), 8000 + 100 * (i % 50), i)),
            (b"cmcd-session", f'cid="iss",sid="{sid}",sf=h,st=l,v=1'.encode())]


def per_request_us(metrics: ReplicaMetrics, requests: list[list[tuple[bytes, bytes]]]) -> float:
    started = time.perf_counter()
    for i, headers in enumerate(requests):
        metrics.answered(f"/live/iss/360p/{i}.1.m4s", 200, 0.002, headers, b"")
    return (time.perf_counter() - started) / len(requests) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--viewers", type=int, default=1000, help="distinct CMCD session ids")
    parser.add_argument("--replicas", type=int, default=4)
    args = parser.parse_args()
    sids = [str(uuid.uuid4()) for _ in range(args.viewers)]
    out: dict[str, float] = {}
    metrics = ReplicaMetrics()
    out["record_plain_us"] = per_request_us(metrics, [PLAIN] * args.requests)
    cmcd = [hls_js_headers(sids[i % len(sids)], i) for i in range(args.requests)]
    out["record_cmcd_us"] = per_request_us(metrics, cmcd)
    started = time.perf_counter()
    snapshot = metrics.snapshot(held=0, now=time.time())
    out["snapshot_ms"] = (time.perf_counter() - started) * 1000
    hub = MetricsHub()
    for r in range(args.replicas):
        hub.report(f"delivery/{r}", snapshot | {"instance": f"i{r}"}, time.time())
    started = time.perf_counter()
    text = render(hub.merged(time.time()))
    out["merge_and_render_ms"] = (time.perf_counter() - started) * 1000
    out["scrape_bytes"] = len(text)
    print(json.dumps({k: round(v, 2) for k, v in out.items()} | vars(args), indent=2))


if __name__ == "__main__":
    main()
