"""Clock benchmark on local Ray: skewed stamping actors kept in step with the ClockAuthority
actor, the way FeedActors are in the pipeline.

Each actor holds a StampingClock with an injected local-clock offset and drift; half sync
over UDP NTP to the authority's server (transport "auto"), half over the Ray `exchange` call
(transport "ray", what a client uses when it cannot reach the server). A sampler reads every
actor's disciplined clock and the authority's at one CLOCK_MONOTONIC instant (shared by all
processes of the host, so the comparison itself costs ~1 us, not a Ray round trip), and
records the residual, the error bound the actor reports, and whether the bound covered it.

    .venv/bin/python -m bench.bench_clock_ray --seconds 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import time
from typing import Any

import ray

from actors.clock_authority import ClockAuthority
from actors.stamping_clock import StampingClock
from orbitcast.clock import ClockConfig


@ray.remote(num_cpus=0)
class BenchStamper:
    def __init__(self, authority: Any, name: str, offset_s: float, drift_ppm: float,
                 transport: str) -> None:
        self.clock = StampingClock(authority, name, skew_offset_s=offset_s,
                                   skew_drift_ppm=drift_ppm, transport=transport).start()

    def sample(self) -> tuple[float, float, float | None, str]:
        m, t = self.clock.probe()
        st = self.clock.client.status()  # type: ignore[union-attr]
        return m, t, st.error_bound_s, st.state.value

    def status(self) -> dict:
        return self.clock.status()


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    res = [abs(x) for r in rows for x in r["residuals"]]
    bounds = [b for r in rows for b in r["bounds"]]
    covered = sum(r["covered"] for r in rows)
    return {"reads": len(res),
            "residual_median_us": statistics.median(res) * 1e6 if res else None,
            "residual_p99_us": pct(res, 99) * 1e6 if res else None,
            "residual_max_us": max(res) * 1e6 if res else None,
            "bound_median_us": statistics.median(bounds) * 1e6 if bounds else None,
            "bound_p99_us": pct(bounds, 99) * 1e6 if bounds else None,
            "bound_covered_pct": 100 * covered / len(res) if res else None}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="measured duration")
    ap.add_argument("--actors", type=int, default=6, help="stamping actors (half per transport)")
    ap.add_argument("--interval", type=float, default=2.0, help="sync interval (config default 2 s)")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds not measured")
    ap.add_argument("--sample-every", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             namespace=f"bench-clock-{os.getpid()}")
    cfg = ClockConfig(ntp_port=free_udp_port(), sync_interval_s=a.interval)
    auth = ClockAuthority.options(name="bench-clock").remote(cfg, "bench-clock")
    ray.get(auth.now.remote(), timeout=60)
    rng = random.Random(a.seed)
    rows: list[dict[str, Any]] = []
    for i in range(a.actors):
        # The case first on each transport; the rest within +-1 s and +-300 ppm.
        off, drift = ((0.25, 200.0) if i < 2 else
                      (rng.uniform(-1, 1), rng.uniform(-300, 300)))
        transport = "auto" if i % 2 == 0 else "ray"
        name = f"bench:{i}:{transport}"
        rows.append({"name": name, "transport": transport, "offset_ms": off * 1e3,
                     "drift_ppm": drift, "residuals": [], "bounds": [], "covered": 0,
                     "not_synced": 0,
                     "actor": BenchStamper.remote(auth, name, off, drift, transport)})
    ray.get([r["actor"].status.remote() for r in rows], timeout=120)

    start = time.monotonic()
    measure_from = start + a.warmup
    end = measure_from + a.seconds
    while time.monotonic() < end:
        m_a, t_a = ray.get(auth.probe.remote())
        samples = ray.get([r["actor"].sample.remote() for r in rows])
        if time.monotonic() >= measure_from:
            for r, (m, t, bound, state) in zip(rows, samples):
                resid = t - (t_a + (m - m_a))
                r["residuals"].append(resid)
                r["bounds"].append(bound if bound is not None else float("inf"))
                r["covered"] += bound is not None and abs(resid) <= bound
                r["not_synced"] += state != "synced"
        time.sleep(a.sample_every)

    statuses = ray.get([r["actor"].status.remote() for r in rows])
    per_actor = []
    for r, st in zip(rows, statuses):
        s = summarize([r])
        per_actor.append({"actor": r["name"], "transport": st["transport"],
                          "injected_offset_ms": r["offset_ms"],
                          "injected_drift_ppm": r["drift_ppm"],
                          "fitted_drift_ppm": -st["frequency_ppm"],
                          "delay_us": (st["delay_s"] or 0) * 1e6,
                          "exchanges": st["exchanges"], "failures": st["failures"],
                          "not_synced_reads": r["not_synced"], **s})
    out = {"seconds": a.seconds, "warmup_s": a.warmup, "interval_s": a.interval,
           "load_average": os.getloadavg(), "cpus": os.cpu_count(),
           "all": summarize(rows),
           "udp": summarize([r for r in rows if r["transport"] == "auto"]),
           "ray": summarize([r for r in rows if r["transport"] == "ray"]),
           "actors": per_actor}
    ray.kill(auth, no_restart=True)
    ray.shutdown()
    if a.json:
        print(json.dumps(out, indent=2))
        return out
    print(f"{'actor':14} {'transport':22} {'off_ms':>7} {'drift':>7} {'fit':>7} "
          f"{'med_us':>7} {'p99_us':>7} {'max_us':>7} {'bound_med':>9} {'cov%':>6}")
    for c in per_actor:
        print(f"{c['actor']:14} {c['transport']:22} {c['injected_offset_ms']:7.1f} "
              f"{c['injected_drift_ppm']:7.1f} {c['fitted_drift_ppm']:7.1f} "
              f"{c['residual_median_us']:7.1f} {c['residual_p99_us']:7.1f} "
              f"{c['residual_max_us']:7.1f} {c['bound_median_us']:9.1f} "
              f"{c['bound_covered_pct']:6.1f}")
    for key in ("udp", "ray", "all"):
        s = out[key]
        print(f"{key}: residual median {s['residual_median_us']:.1f} us, p99 "
              f"{s['residual_p99_us']:.1f} us, max {s['residual_max_us']:.1f} us; error bound "
              f"median {s['bound_median_us']:.1f} us, p99 {s['bound_p99_us']:.1f} us; "
              f"covered {s['bound_covered_pct']:.1f}% of {s['reads']} reads")
    print(f"load average {out['load_average']}, {out['cpus']} cpus")
    return out


if __name__ == "__main__":
    main()
