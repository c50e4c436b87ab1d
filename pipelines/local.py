"""Local Ray as `orbitcast demo`, the benchmarks and the tests start it: one place that decides
how Serve's HTTP ingress runs on a laptop.

Viewers reach the Delivery replicas through Ray Serve's HAProxy ingress with direct ingress on
the replicas (`RAY_SERVE_ENABLE_HA_PROXY` + `RAY_SERVE_THROUGHPUT_OPTIMIZED`, measured fastest
in docs/benchmarks.md), with HAProxy's cache in front of the immutable media
(`orbitcast-haproxy`), and `/live/` answered ahead of Serve's request wrapper (the fast path,
`orbitcast/delivery/fast_path.py`). Serve reads these settings when its processes start, so they are set
before Ray starts; a variable already set in the environment wins. On a cluster, `ray start`
gets the same variables (cluster.yaml).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

NAMESPACE = "orbitcast"
# Ports Serve's HAProxy ingress takes besides the viewer port (stats, Prometheus, the fallback
# proxy): fixed by default, so two local Ray instances (a demo and a test run) would collide.
SIDE_PORTS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT",
              "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")


# Ray's GCS declares a node dead after `failure_threshold` missed health checks, one every
# `period_ms`: 5 x 3 s by default, 15-20 s in which the actors on a lost node are neither alive
# nor started again elsewhere, and a live stream stands still. Set where the GCS starts (the
# head: cluster.yaml); 3 checks a second apart, each allowed 2 s, notice a loss in 3-5 s.
NODE_LOSS_ENV = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "2000",
    "RAY_health_check_failure_threshold": "3",
}

FAST_PATH_CALLBACK = "orbitcast.delivery.fast_path:middlewares"


def serve_ingress_env() -> dict[str, str]:
    """The environment every node's Ray must start with for orbitcast's ingress."""
    wrapper = Path(sys.executable).parent / "orbitcast-haproxy"
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(wrapper) if wrapper.exists() else (shutil.which("orbitcast-haproxy") or ""),
        # /live/ answered by the Delivery replica's own server ahead of Serve's request wrapper.
        "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": FAST_PATH_CALLBACK,
    }


# A side port is bound a while after it is chosen, by HAProxy, while Ray's processes bind ports
# of their own: one the kernel handed out as "any free port" could be taken meanwhile (seen
# once: HAProxy's stats port, and the demo did not start). Chosen above Ray's worker ports
# (10002-19999 by default) and below the kernel's range for such ports, a free one stays free.
PICK_FROM = 20000


def ephemeral_low(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    """The lowest port the kernel hands out for a bind to port 0 (Linux's default: 32768)."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port on 127.0.0.1 that no later bind to port 0 can take (see PICK_FROM)."""
    high = ephemeral_low()
    for _ in range(100):
        port = random.randrange(PICK_FROM, high) if high > PICK_FROM + 100 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    with socket.socket() as s:  # a crowded machine: any free port, as before
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_serve_env() -> dict[str, str]:
    """`serve_ingress_env` for a Ray that runs on this machine alone."""
    return {
        **serve_ingress_env(),
        # One node: HAProxy learns of a stopping replica within a tenth of a second, so a
        # replica need not keep its port open for Serve's 30 s default before it goes.
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
        **{name: str(free_port()) for name in SIDE_PORTS},
    }


def use_local_serve_env() -> None:
    """Put `local_serve_env` into this process's environment (what is already set wins), for a
    Ray that this process starts."""
    for key, value in local_serve_env().items():
        if value:
            os.environ.setdefault(key, value)


def init_local_ray(namespace: str = NAMESPACE, num_cpus: int | None = None, **kwargs: Any) -> None:
    import ray

    use_local_serve_env()
    kwargs.setdefault("include_dashboard", False)
    ray.init(namespace=namespace, num_cpus=num_cpus or max(2, os.cpu_count() or 2), **kwargs)
