"""Clock benchmark without Ray: skewed clients syncing to the authority over real UDP.

Several clients, each with an injected local-clock offset and drift, exchange NTP packets
with the authority's UDP server on 127.0.0.1 (real sockets, real scheduling jitter) on an
interval, for a wall-clock duration. A sampler reads every client's disciplined clock
bracketed by two authority reads and records the residual, the error bound the client
reports, whether the bound covered the residual, and any backwards step.

    .venv/bin/python bench/bench_clock.py --seconds 60 --clients 6 --interval 1
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from orbitcast.clock import (ClockAuthority, ClockConfig, DisciplinedClock, MonotonicWall,
                             SyncClient, UDPAsk)


def skewed_source(offset: float, drift: float) -> Callable[[], float]:
    base = MonotonicWall()
    t0 = base()
    return lambda: (lambda t: t + offset + drift * (t - t0))(base())


@dataclass
class ClientRun:
    name: str
    offset: float
    drift: float
    client: SyncClient
    residuals: list[float] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)
    covered: int = 0
    backwards: int = 0
    last: float = float("-inf")
    exchanges: int = 0
    failures: int = 0


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--interval", type=float, default=1.0, help="sync interval per client")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds not measured")
    ap.add_argument("--sample-every", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    auth = ClockAuthority.from_config(ClockConfig(ntp_port=0, local_stratum=2)).start()
    assert auth.ntp_server is not None
    port = auth.ntp_server.port
    rng = random.Random(a.seed)
    runs: list[ClientRun] = []
    for i in range(a.clients):
        # Offsets within +-1 s and drifts within +-300 ppm, the first one the case.
        off, drift = (0.25, 200e-6) if i == 0 else (rng.uniform(-1, 1),
                                                     rng.uniform(-300e-6, 300e-6))
        runs.append(ClientRun(f"c{i}", off, drift,
                              SyncClient(DisciplinedClock(skewed_source(off, drift)))))

    stop = threading.Event()

    def sync_loop(r: ClientRun) -> None:
        with UDPAsk("127.0.0.1", port, timeout=0.5) as ask:
            stop.wait(rng.uniform(0, a.interval))  # spread the clients over the interval
            while not stop.is_set():
                res = r.client.exchange(ask)
                r.exchanges += 1
                r.failures += not res.ok
                stop.wait(a.interval)

    threads = [threading.Thread(target=sync_loop, args=(r,), daemon=True) for r in runs]
    for t in threads:
        t.start()
    start = time.monotonic()
    measure_from = start + a.warmup
    end = start + a.warmup + a.seconds
    while time.monotonic() < end:
        for r in runs:
            if r.client.status().samples == 0:
                continue  # nobody stamps with a client before its first sync
            a0 = auth.now()
            c = r.client.now()
            a1 = auth.now()
            if c < r.last:
                r.backwards += 1
            r.last = c
            if time.monotonic() < measure_from:
                continue
            resid = c - (a0 + a1) / 2
            bound = r.client.status().error_bound_s or float("inf")
            r.residuals.append(resid)
            r.bounds.append(bound)
            r.covered += abs(resid) <= bound + (a1 - a0) / 2
        time.sleep(a.sample_every)
    stop.set()
    for t in threads:
        t.join(timeout=2)
    server = auth.ntp_server
    auth.stop()

    per_client = []
    for r in runs:
        st = r.client.status()
        ab = [abs(x) for x in r.residuals]
        per_client.append({
            "client": r.name, "injected_offset_ms": r.offset * 1e3,
            "injected_drift_ppm": r.drift * 1e6, "fitted_drift_ppm": -st.frequency_ppm,
            "residual_median_us": statistics.median(ab) * 1e6 if ab else None,
            "residual_p99_us": pct(ab, 99) * 1e6 if ab else None,
            "residual_max_us": max(ab) * 1e6 if ab else None,
            "bound_median_us": statistics.median(r.bounds) * 1e6 if r.bounds else None,
            "bound_max_us": max(r.bounds) * 1e6 if r.bounds else None,
            "bound_covered_pct": 100 * r.covered / len(r.residuals) if r.residuals else None,
            "delay_us": (st.delay_s or 0) * 1e6, "exchanges": r.exchanges,
            "failures": r.failures, "backwards": r.backwards, "reads": len(r.residuals),
        })
    all_abs = [abs(x) for r in runs for x in r.residuals]
    all_bounds = [b for r in runs for b in r.bounds]
    summary = {
        "seconds": a.seconds, "warmup": a.warmup, "clients": a.clients,
        "interval_s": a.interval, "reads": len(all_abs),
        "residual_median_us": statistics.median(all_abs) * 1e6,
        "residual_p99_us": pct(all_abs, 99) * 1e6,
        "residual_max_us": max(all_abs) * 1e6,
        "bound_median_us": statistics.median(all_bounds) * 1e6,
        "bound_p99_us": pct(all_bounds, 99) * 1e6,
        "bound_covered_pct": 100 * sum(r.covered for r in runs) / len(all_abs),
        "backwards": sum(r.backwards for r in runs),
        "ntp_requests": server.requests if server else None,
    }
    out = {"summary": summary, "clients": per_client}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{'client':6} {'offset_ms':>9} {'drift_ppm':>9} {'fit_ppm':>8} "
              f"{'med_us':>7} {'p99_us':>7} {'max_us':>7} {'bound_med':>9} {'covered%':>8} "
              f"{'back':>4}")
        for c in per_client:
            print(f"{c['client']:6} {c['injected_offset_ms']:9.1f} {c['injected_drift_ppm']:9.1f} "
                  f"{c['fitted_drift_ppm']:8.1f} {c['residual_median_us']:7.1f} "
                  f"{c['residual_p99_us']:7.1f} {c['residual_max_us']:7.1f} "
                  f"{c['bound_median_us']:9.1f} {c['bound_covered_pct']:8.1f} {c['backwards']:4d}")
        print("all: residual median {residual_median_us:.1f} us, p99 {residual_p99_us:.1f} us, "
              "max {residual_max_us:.1f} us; error bound median {bound_median_us:.1f} us, "
              "p99 {bound_p99_us:.1f} us; bound covered {bound_covered_pct:.1f}%; "
              "backwards steps {backwards}; {reads} reads".format(**summary))
    return out


if __name__ == "__main__":
    main()
