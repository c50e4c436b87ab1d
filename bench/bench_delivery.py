"""The viewer path under load: orbitcast's Serve port against nginx serving the same bytes, in
one run, and LL-HLS blocking requests held by the hundred.

    .venv/bin/python -m bench.bench_delivery                  # starts the demo, 10 s per wrk run
    .venv/bin/python -m bench.bench_delivery --seconds 30 --held 500 --rounds 10
    .venv/bin/python -m bench.bench_delivery --url http://127.0.0.1:8000   # a server already running

What it reports:
- `wrk -t2 -cC -dS --latency` (C = 10 and 100) on one whole segment of the top rung and on the
  media playlist, through orbitcast's Serve port and through Debian's nginx (2 workers, sendfile,
  a config this script writes) serving the same bytes from a folder: requests/s, p50, p99.
  Both run while the demo pipeline transcodes on the same cores, one after the other, so both
  see the same machine.
- held requests: N concurrent `_HLS_msn`/`_HLS_part` requests for the next part (one asyncio
  process, raw HTTP/1.1 on connections opened beforehand), per round: from the part's arrival
  at the replica (`Orbitcast-Ready-At`, same host clock) to each answer, p50/p99, and to the
  last answer; and once for a part that is already there, the spread from the first to the
  last answer: what answering and reading N responses costs on this machine, nothing held.
- the part hop: from "the transcoder cut the part" to "a Delivery replica lists it", p50/p95/p99
  as each replica measures it (`/api/delivery`), over the warm-up (no load but the pipeline) and
  again at the end (its last parts include the wrk and held load).
Results are printed and written to bench/results/delivery-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from pipelines.local import free_port

RESULTS = Path(__file__).parent / "results"
NGINX_CONF = """
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ video/iso.segment m4s; application/vnd.apple.mpegurl m3u8; }}
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location / {{ add_header Cache-Control "public, max-age=31536000, immutable"; }}
    }}
}}
"""


def fetch(url: str, timeout: float = 10) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read(), {k.lower(): v for k, v in r.headers.items()}


# -- wrk ------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, connections: int, seconds: float) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)", out)
    return {"rps": round(rps), "p50_ms": round(_ms(dist["50"]), 2), "p99_ms": round(_ms(dist["99"]), 2),
            "non_2xx": int(errors.group(1)) if errors else 0, "socket_errors": sockets.group(1) if sockets else None}


class Nginx:
    """Debian's nginx on loopback with a config of our own, serving a folder."""

    def __init__(self, files: dict[str, bytes]) -> None:
        if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
            raise SystemExit("nginx is not installed (make bench installs it: apt-get install nginx)")
        self.tmp = Path(tempfile.mkdtemp(prefix="orbitcast-nginx-"))
        self.tmp.chmod(0o755)  # nginx's workers run as another user
        (self.tmp / "www").mkdir()
        for name, data in files.items():
            (self.tmp / "www" / name).write_bytes(data)
        self.port = free_port()
        (self.tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=self.tmp, port=self.port))
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Nginx":
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-c", str(self.tmp / "nginx.conf"), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                fetch(self.base + "/index.m3u8", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- held requests ------------------------------------------------------------------------------
def next_part(playlist: str) -> tuple[int, int]:
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\d+)\.(\d+)\.m4s"', playlist)
    if not m:
        raise RuntimeError("no preload hint in the playlist")
    return int(m.group(1)), int(m.group(2))


class _Held(asyncio.Protocol):
    """One keep-alive connection that sends one request at a time and notes when the first
    byte of each answer reached this process (in `data_received`, before any parsing: with
    hundreds of answers arriving together, a reader that parsed each before timing the next
    would time its own parsing; at 500 answers that was tens of milliseconds here)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.first_byte_at = 0.0
        self.done: asyncio.Future | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def ask(self, request: bytes) -> asyncio.Future:
        self.buffer.clear()
        self.first_byte_at = 0.0
        self.done = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes) -> None:
        if not self.buffer:
            self.first_byte_at = time.time()
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.done is None or self.done.done():
            return
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", self.buffer[:end])
        if len(self.buffer) >= end + 4 + (int(length.group(1)) if length else 0):
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed before the answer"))

    def response(self) -> tuple[float, int, dict[str, str], bytes]:
        head, _, body = bytes(self.buffer).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        return self.first_byte_at, int(lines[0].split()[1]), headers, body


async def held_round(base: str, path: str, count: int, ahead: bool = True) -> dict:
    """`count` connections, opened and used once first (so no connection setup is timed), then
    one blocking request each for the next part, all sent before it is cut. With `ahead`
    False they ask for the newest part, which is there: the answers come at once, and the
    spread from the first to the last is what answering and reading `count` responses costs
    on this machine (client included), with nothing held."""
    host, port = base.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    conns: list[_Held] = [(await loop.create_connection(_Held, host, int(port)))[1] for _ in range(count)]
    try:
        warm = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        await asyncio.gather(*(c.ask(warm) for c in conns))
        # A query of its own: the plain playlist may come from HAProxy's cache, up to a second old.
        text, _ = fetch(f"{base}{path}?fresh={time.time_ns()}")
        msn, part = next_part(text.decode()) if ahead else last_part(text.decode())
        # Answered at once, the same query would come from HAProxy's cache after the first:
        # a query of its own per request keeps every answer the replica's.
        # `_HLS_skip=v2`: hls.js asks for delta updates once it has a playlist (CAN-SKIP-UNTIL;
        # v2 as CAN-SKIP-DATERANGES is offered), so a low-latency reload does not carry the DVR window.
        asks = [f"GET {path}?_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=v2{'' if ahead else f'&n={i}'} HTTP/1.1\r\n"
                f"Host: {host}\r\n\r\n".encode() for i in range(count)]
        sent = time.time()
        waits = [c.ask(ask) for c, ask in zip(conns, asks)]
        await asyncio.wait_for(asyncio.gather(*waits), 30)
        results = [c.response() for c in conns]
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()
    first = min(at for at, _, _, _ in results)
    needle = f"{msn}.{part}.m4s".encode()
    oks = sum(1 for _, status, _, body in results if status == 200 and needle in body)
    readies = [float(h["orbitcast-ready-at"]) for _, _, h, _ in results if "orbitcast-ready-at" in h]
    arrival = min(readies) if readies else float("nan")
    delays = sorted((at - float(h["orbitcast-ready-at"])) * 1000 for at, _, h, _ in results if "orbitcast-ready-at" in h)
    return {
        "msn": msn, "part": part, "ok": oks, "count": count,
        "held_ms": round((arrival - sent) * 1000, 1),  # how long the part took to come
        "answer_p50_ms": round(statistics.median(delays), 2) if delays else None,
        "answer_p99_ms": round(delays[int(0.99 * (len(delays) - 1))], 2) if delays else None,
        "last_answer_ms": round((max(at for at, _, _, _ in results) - arrival) * 1000, 2),
        "spread_ms": round((max(at for at, _, _, _ in results) - first) * 1000, 2),  # first to last answer
        "answers_ms": [round(d, 2) for d in delays],
    }


def last_part(playlist: str) -> tuple[int, int]:
    """The newest listed part (the one before the preload hint)."""
    parts = re.findall(r'#EXT-X-PART:[^\n]*URI="(\d+)\.(\d+)\.m4s"', playlist)
    if not parts:
        raise RuntimeError("no part in the playlist")
    return int(parts[-1][0]), int(parts[-1][1])


def part_hops(base: str, asks: int = 20) -> dict[int, dict]:
    """/api/delivery of every replica that answers (several asks reach several replicas)."""
    seen: dict[int, dict] = {}
    for _ in range(asks):
        body, _ = fetch(base + "/api/delivery")
        stats = json.loads(body)
        seen[stats["pid"]] = stats
    return seen


def load_average() -> float:
    return os.getloadavg()[0]


# -- the run --------------------------------------------------------------------------------------
def run(base: str, feed: str, seconds: float, connections: list[int], held: int, rounds: int) -> dict:
    master, _ = fetch(f"{base}/live/{feed}/master.m3u8")
    top = next(line for line in master.decode().splitlines() if line and not line.startswith("#"))
    media_url = f"{base}/live/{feed}/{top}"
    playlist, _ = fetch(media_url)
    segment_name = [line for line in playlist.decode().splitlines() if line.endswith(".m4s")][-1]
    segment_url = media_url.rsplit("/", 1)[0] + "/" + segment_name
    segment, headers = fetch(segment_url)
    print(f"segment {segment_url}: {len(segment)} bytes ({headers.get('cache-control')})", flush=True)
    report: dict = {"segment_url": segment_url, "segment_bytes": len(segment), "playlist_bytes": len(playlist),
                    "seconds": seconds, "wrk": [], "held": [], "cpus": os.cpu_count(),
                    "part_hop_quiet": part_hops(base)}
    for pid, stats in report["part_hop_quiet"].items():
        print(f"replica {pid}, before any load: part hop (transcoder cut -> listed here) {stats.get('part_hop_ms')} "
              f"over {stats['parts_timed']} parts", flush=True)
    with Nginx({"seg.m4s": segment, "index.m3u8": playlist}) as nginx:
        for what, ours, theirs in (("segment", segment_url, nginx.base + "/seg.m4s"),
                                   ("playlist", media_url, nginx.base + "/index.m3u8")):
            for c in connections:
                for server, url in (("orbitcast", ours), ("nginx", theirs)):
                    load = load_average()
                    result = {"what": what, "server": server, "connections": c, "load_before": round(load, 2), **wrk(url, c, seconds)}
                    report["wrk"].append(result)
                    print(f"{what:8} {server:9} c={c:<3} {result['rps']:>7} req/s  p50 {result['p50_ms']:7.2f} ms"
                          f"  p99 {result['p99_ms']:7.2f} ms  non-2xx {result['non_2xx']}", flush=True)
    floor = asyncio.run(held_round(base, media_url.removeprefix(base), held, ahead=False))
    report["immediate"] = floor
    print(f"immediate round (the part is there): {floor['ok']}/{floor['count']} ok, first to last answer "
          f"{floor['spread_ms']} ms: answering and reading {held} responses here, nothing held", flush=True)
    for i in range(rounds):
        result = asyncio.run(held_round(base, media_url.removeprefix(base), held))
        report["held"].append(result)
        print(f"held round {i}: {result['ok']}/{result['count']} ok, part came after {result['held_ms']} ms; "
              f"answers after arrival p50 {result['answer_p50_ms']} ms p99 {result['answer_p99_ms']} ms, "
              f"last {result['last_answer_ms']} ms", flush=True)
    report["part_hop_after"] = part_hops(base)
    for pid, stats in report["part_hop_after"].items():
        print(f"replica {pid}, last {stats['parts_timed']} parts (wrk and held load included): part hop "
              f"{stats.get('part_hop_ms')}; held answers written whole {stats.get('held_written_whole')}")
    return report


def summary(report: dict) -> None:
    rows = {(r["what"], r["server"], r["connections"]): r for r in report["wrk"]}
    print("\n| what | c | orbitcast req/s | nginx req/s | ratio | orbitcast p50/p99 ms | nginx p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for what in ("segment", "playlist"):
        for c in sorted({k[2] for k in rows}):
            o, n = rows.get((what, "orbitcast", c)), rows.get((what, "nginx", c))
            if o and n:
                print(f"| {what} | {c} | {o['rps']} | {n['rps']} | {o['rps'] / max(1, n['rps']):.2f} | "
                      f"{o['p50_ms']}/{o['p99_ms']} | {n['p50_ms']}/{n['p99_ms']} |")
    if report["held"]:
        p99s = [h["answer_p99_ms"] for h in report["held"] if h["answer_p99_ms"] is not None]
        lasts = [h["last_answer_ms"] for h in report["held"]]
        every = sorted(d for h in report["held"] for d in h["answers_ms"])
        within = sum(1 for p in p99s if p <= 50)
        print(f"\nheld: {report['held'][0]['count']} requests x {len(report['held'])} rounds; answer after the part's "
              f"arrival, all answers together: p50 {statistics.median(every):.1f} ms, p99 "
              f"{every[int(0.99 * (len(every) - 1))]:.1f} ms; p99 per round: median {statistics.median(p99s):.1f} ms, "
              f"worst {max(p99s):.1f} ms, {within} of {len(p99s)} rounds within 50 ms; "
              f"last answer: median {statistics.median(lasts):.1f} ms, worst {max(lasts):.1f} ms; "
              f"the same {report['held'][0]['count']} answered at once (nothing held) spread over "
              f"{report['immediate']['spread_ms']:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running orbitcast (default: start the demo in this process)")
    parser.add_argument("--feed", default="iss")
    parser.add_argument("--port", type=int, default=8078, help="the demo's port when this script starts it")
    parser.add_argument("--seconds", type=float, default=10.0, help="per wrk run")
    parser.add_argument("--connections", default="10,100")
    parser.add_argument("--held", type=int, default=500, help="concurrent blocking playlist requests")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds of live media before measuring")
    parser.add_argument("--replicas", type=int, default=None, help="serve.min_replicas of the demo (default: the config's)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (make bench installs it: apt-get install wrk)")
    connections = [int(c) for c in args.connections.split(",") if c]  # "" : held requests only
    with ExitStack() as stack:
        base = args.url.rstrip("/") if args.url else None
        if base is None:
            from bench.demo_server import running_demo

            settings = {"min_replicas": args.replicas, "max_replicas": max(4, args.replicas)} if args.replicas else None
            demo = stack.enter_context(running_demo(port=args.port, serve_settings=settings))
            base = demo.base
            print(f"demo playable after {demo.startup_s:.1f} s at {base}", flush=True)
        time.sleep(args.warmup)
        report = run(base, args.feed, args.seconds, connections, args.held, args.rounds)
    summary(report)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"delivery-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
