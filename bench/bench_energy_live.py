"""Joules per media second per rung as the live pipeline reports them.

Starts the demo pipeline (one lavfi 1280x720 feed at 30 fps, the demo ladder, two transcoder
members) on a local Ray with `energy.enabled`, lets it run `--seconds`, then reads
`/api/energy` (the last 30 s) and the catalog rows of the segments made during the run
(joules over media duration per rung). Compare with `bench.bench_energy` (no Ray, unpaced):
docs/energy.md.

    .venv/bin/python -m bench.bench_energy_live --seconds 60 [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray
import requests

from orbitcast.catalog import Catalog
from orbitcast.config import parse_config
from orbitcast.energy.rapl import RaplReader
from orbitcast.store import Store
from pipelines.live import start
from pipelines.local import init_local_ray


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_energy_live", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=28931)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="bench-energy-live-")
    config = parse_config({"energy": {"enabled": True}, "store": f"{tmp}/store", "threema": {"keys_dir": f"{tmp}/keys"},
                           "serve": {"host": "127.0.0.1", "port": args.port}, "clock": {"ntp_port": args.port + 1}})
    init_local_ray(namespace="bench-energy-live", log_to_driver=False)
    pipeline = start(config)
    try:
        if not pipeline.wait_playable(180):
            raise SystemExit("the pipeline did not become playable in 180 s")
        t0 = time.time()
        time.sleep(args.seconds)
        wall = time.time() - t0
        api = requests.get(pipeline.url + "api/energy", timeout=10).json()
        pipeline.flush_catalogs()
        rows = Catalog(Store(config.store)).query(
            "iss", columns=["rendition", "duration", "joules", "energy_source", "energy_error", "program_date_time"]).to_pylist()
    finally:
        pipeline.stop()
        ray.shutdown()
    rows = [r for r in rows if r["program_date_time"].timestamp() >= t0]
    catalog = {}
    for rung in [r.name for r in config.ladder.rungs]:
        of = [r for r in rows if r["rendition"] == rung]
        measured = [r for r in of if r["joules"] is not None]
        media = sum(r["duration"] for r in measured)
        catalog[rung] = {
            "segments": len(of), "with_joules": len(measured), "media_s": media,
            "joules_per_media_s": sum(r["joules"] for r in measured) / media if media else None,
            "error_per_media_s": sum(r["energy_error"] for r in measured) / media if media else None,
            "sources": sorted({r["energy_source"] for r in measured}),
        }
    out = {"seconds": wall, "rapl_readable": RaplReader().available, "catalog": catalog, "api": api}
    print(f"{wall:.0f} s of the demo pipeline; RAPL readable: {out['rapl_readable']}; source {api['source']}")
    print("rung    segments  J/media s (catalog)  ± error   W (api, last 30 s)  J/media s (api)")
    for rung, c in catalog.items():
        a = api["feeds"].get("iss", {}).get("rungs", {}).get(rung, {})
        jpm = c["joules_per_media_s"]
        print(f"{rung:7s} {c['segments']:8d}  {jpm if jpm is not None else float('nan'):19.3f}  "
              f"{c['error_per_media_s'] or float('nan'):7.3f}   {a.get('watts', float('nan')):17.3f}  "
              f"{a.get('joules_per_media_s') or float('nan'):15.3f}")
    for m in api["members"]:
        print(f"member {m['member']}: host {m['host_w'] or 0:.2f} W (utilisation {m['utilisation'] or 0:.2f}), "
              f"this process {m['process_w'] or 0:.2f} W, {m['process_cpu_per_s'] or 0:.3f} CPU s/s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
