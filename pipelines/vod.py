"""A recording through the ladder, chunk-parallel on the cluster (docs/vod.md):

    python -m pipelines.vod FILE --name NAME [--config orbitcast.yaml]   # the `ray job submit` entry point
    orbitcast transcode FILE --name NAME [--config orbitcast.yaml]       # the same

The work is `orbitcast.vod`; here the chunks become Ray tasks (one CPU each, retried, so the
autoscaler adds nodes for a long file), the segments go to a `Packager` of the feed
`vod.NAME` (sealed, catalogued, certified; no message is sent: the edge opens what the
catalog keeps when a viewer asks), and a tqdm bar follows the job. Exit status: 0 done, 1 a
chunk failed after its retries, 2 a bad file or name (the reason on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import ray

from orbitcast.config import OrbitcastConfig
from orbitcast.store import Store
from orbitcast.vod.chunk import ChunkOutput, transcode_chunk
from orbitcast.vod.job import Runner, prepare, run_job
from orbitcast.vod.plan import Chunk
from orbitcast.vod.state import JobState, JobStore
from pipelines.vod_cli import DEFAULT_RETRIES


@ray.remote(num_cpus=1)
def _chunk_task(path: str, chunk: Chunk, feed: str, origin: float, epoch: float, config: OrbitcastConfig) -> ChunkOutput:
    return transcode_chunk(path, chunk, feed=feed, origin=origin, epoch=epoch, ladder=config.ladder,
                           segment_duration=config.segment_duration, part_duration=config.part_duration)


def ray_runner(job: JobState, path: str, config: OrbitcastConfig, retries: int) -> Runner:
    """Every pending chunk as a task at once (Ray queues what the cluster cannot take yet);
    results as they finish."""
    task = _chunk_task.options(max_retries=retries, retry_exceptions=True)

    def run(chunks: list[Chunk]) -> Iterator[tuple[Chunk, ChunkOutput | BaseException]]:
        refs = {task.remote(path, c, job.feed, job.origin, job.epoch, config): c for c in chunks}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                chunk = refs.pop(ready[0])
                try:
                    yield chunk, ray.get(ready[0])
                except ray.exceptions.RayError as err:
                    yield chunk, err
        finally:
            for ref in refs:  # the job failed: what is still queued is not wanted
                ray.cancel(ref, force=True)

    return run


class Publisher:
    """The job's sealing stack: a Packager for `vod.NAME` (deliver=False); the running
    pipeline's ledger (its proofs are then served under /ledger/vod.NAME/), or without a
    pipeline a ledger actor of its own over the same store and key (for `vod.*` feeds only: it
    never opens a live feed's log; a pipeline started later serves the log it wrote); and, for
    the embedded gateway, a gateway actor over the same blob store the edge reads archived
    blobs from."""

    def __init__(self, config: OrbitcastConfig, feed: str) -> None:
        from actors.gateway import GatewayActor
        from actors.ledger import LedgerActor, running_ledger
        from actors.packager import Packager
        from orbitcast.sealed_delivery import build_plan

        plan = build_plan(config, f"http://127.0.0.1:{config.serve.port}",
                          blob_store=Store(config.store).path("threema-blobs"))
        self.gateway = GatewayActor.remote(plan.gateway) if plan.gateway is not None else None
        shared = running_ledger()
        self.own_ledger = shared is None
        self.ledger = shared if shared is not None else LedgerActor.remote(config.model_copy(update={"feeds": []}), None)
        self.packager = Packager.remote(config, feed, plan.packager_view(), self.ledger, self.gateway, deliver=False)

    def __call__(self, out: ChunkOutput, with_inits: bool) -> None:
        ray.get(self.packager.publish.remote(out.inits if with_inits else {}, out.segments))
        ray.get(self.packager.flush.remote())  # the rows are in the store before the chunk is marked done

    def close(self) -> None:
        try:
            ray.get([self.packager.flush.remote(), *([self.ledger.close.remote()] if self.own_ledger else [])],
                    timeout=10)
        except Exception:  # noqa: BLE001 - closing: the log reloads cleanly anyway
            pass
        for actor in (self.packager, self.ledger if self.own_ledger else None, self.gateway):
            if actor is not None:
                ray.kill(actor, no_restart=True)


class Bar:
    """The job on the terminal: chunks done of all, with tqdm's rate and ETA."""

    def __init__(self, job: JobState, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=len(job.chunks), initial=job.done_count, unit="chunk", desc=job.name,
                        disable=quiet, file=sys.stderr)
        self.seen = job.done_count

    def __call__(self, job: JobState) -> None:
        self.bar.update(job.done_count - self.seen)
        self.seen = job.done_count

    def close(self) -> None:
        self.bar.close()


def transcode(config: OrbitcastConfig, path: str, name: str, *, chunk_seconds: float | None = None,
              retries: int = DEFAULT_RETRIES, quiet: bool = False) -> JobState:
    """The job on the connected Ray cluster; its final state, or a `VodError`."""
    jobs = JobStore(Store(config.store))
    job = prepare(jobs, name, path, config, chunk_seconds)
    before = job.done_count
    if not quiet:
        print(f"orbitcast: {name}: {job.duration:.1f} s in {len(job.chunks)} chunks"
              + (f", {before} done before" if before else ""), file=sys.stderr)
    if not job.pending():
        return run_job(job, jobs, config, lambda _: (), lambda *_: None)
    publisher = Publisher(config, job.feed)
    bar = Bar(job, quiet)
    try:
        return run_job(job, jobs, config, ray_runner(job, path, config, retries), publisher, bar)
    finally:
        bar.close()
        publisher.close()


def main(argv: list[str] | None = None) -> int:
    from pipelines.vod_cli import add_arguments, run

    parser = argparse.ArgumentParser(prog="python -m pipelines.vod",
                                     description="A recording through the ladder, chunk-parallel on the Ray cluster at RAY_ADDRESS.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
