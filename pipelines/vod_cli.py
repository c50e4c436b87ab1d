"""`orbitcast transcode` / `python -m pipelines.vod`: the arguments and the exit status, without
importing Ray or PyAV until a job runs (the rest of the command line stays quick)."""

from __future__ import annotations

import argparse
import sys
import time

DEFAULT_RETRIES = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the recording (any file FFmpeg reads, with a video stream)")
    p.add_argument("--name", required=True, help="its name: served at /vod/NAME/master.m3u8 ([A-Za-z0-9_-], 64 at most)")
    p.add_argument("--config", default=None, help="the pipeline's orbitcast.yaml (its store, keys, ladder; default: the demo's)")
    p.add_argument("--chunk-seconds", type=float, default=None,
                   help="about how long each chunk is, rounded to whole segments (default: ten segments)")
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                   help="times a failed chunk is tried again before the job fails (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from orbitcast.config import ConfigError, anchored, load_config
    from orbitcast.delivery.names import BadName
    from orbitcast.vod.errors import ChunkFailed, VodError

    try:
        config = anchored(load_config(args.config))
    except ConfigError as err:
        print(f"orbitcast transcode: {err}", file=sys.stderr)
        return 2
    import ray

    from pipelines.vod import transcode

    if not ray.is_initialized():
        from pipelines.local import NAMESPACE

        ray.init(namespace=NAMESPACE, log_to_driver=False)
    started = time.monotonic()
    try:
        job = transcode(config, args.file, args.name, chunk_seconds=args.chunk_seconds, retries=args.retries,
                        quiet=args.quiet)
    except ChunkFailed as err:
        print(f"orbitcast transcode: {args.name}: {err}", file=sys.stderr)
        return 1
    except (VodError, BadName) as err:
        print(f"orbitcast transcode: {err}", file=sys.stderr)
        return 2
    run_info = job.runs[-1]
    print(f"orbitcast: {job.name} done in {time.monotonic() - started:.1f} s: transcoded {run_info['transcoded']} "
          f"of {len(job.chunks)} chunks ({run_info['done_before']} done before); "
          f"/vod/{job.name}/master.m3u8", flush=True)
    return 0
