"""Local Ray as `orbitcast demo`, the benchmarks and the tests start it: one place that decides
how Serve's HTTP ingress runs on a laptop."""

from __future__ import annotations

import os
from typing import Any

NAMESPACE = "orbitcast"


def init_local_ray(namespace: str = NAMESPACE, num_cpus: int | None = None, **kwargs: Any) -> None:
    import ray

    kwargs.setdefault("include_dashboard", False)
    ray.init(namespace=namespace, num_cpus=num_cpus or max(2, os.cpu_count() or 2), **kwargs)
