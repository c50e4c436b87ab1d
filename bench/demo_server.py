"""The demo pipeline (`orbitcast demo`'s settings) started in-process for a benchmark."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Demo:
    base: str  # http://127.0.0.1:PORT
    pipeline: Any  # pipelines.live.Pipeline
    startup_s: float


@contextlib.contextmanager
def running_demo(port: int = 8077, config_path: str | None = None, serve_settings: dict | None = None,
                 **updates: Any) -> Iterator[Demo]:
    """Local Ray + Serve + the demo feed (or the config at `config_path`), on `port`, with a
    store and keys in a temporary folder; yields once the first segment is playable. `serve_settings`:
    more settings of `serve:` (e.g. min_replicas)."""
    import ray
    from ray import serve

    from orbitcast.config import load_config
    from pipelines.live import start
    from pipelines.local import init_local_ray

    tmp = tempfile.mkdtemp(prefix="orbitcast-bench-")
    cfg = load_config(config_path)
    cfg = cfg.model_copy(update={
        "store": f"{tmp}/store",
        # The benches stand in for hundreds of viewers from one address: no per-client limit.
        "serve": cfg.serve.model_copy(update={"port": port, "host": "127.0.0.1", "max_held_per_client": 0, **(serve_settings or {})}),
        "threema": cfg.threema.model_copy(update={"keys_dir": f"{tmp}/keys"}),
        **updates,
    })
    init_local_ray(log_to_driver=False)
    pipeline = None
    try:
        started = time.monotonic()
        pipeline = start(cfg)
        if not pipeline.wait_playable(120):
            raise RuntimeError("the demo did not become playable in 120 s")
        yield Demo(pipeline.url.rstrip("/"), pipeline, time.monotonic() - started)
    finally:
        if pipeline is not None:
            pipeline.stop()
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
