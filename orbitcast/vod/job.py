"""A recording job without Ray: prepare (new or resumed), then take each chunk's output as it
comes, check it against the others, hand it to the publisher and persist the state.

`runner` runs chunks anywhere (Ray tasks in `pipelines/vod.py`, a loop in tests) and yields
(chunk, output or the exception that ended it after its retries), in any order. A chunk is
`done` only once it is published and the state saying so is in the store: a job killed at any
point redoes at most the chunks it had not recorded, never one it had.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from ..config import OrbitcastConfig
from ..sealed_delivery import rendition_info
from .chunk import ChunkOutput
from .errors import ChunkFailed, InitMismatch, NameTaken, VodError
from .names import vod_feed
from .plan import Chunk, plan_chunks
from .probe import probe
from .state import ChunkState, JobState, JobStore, fingerprint

DEFAULT_CHUNK_SEGMENTS = 10  # chunks of about ten segments: a few seconds of work each


class Runner(Protocol):
    def __call__(self, chunks: list[Chunk]) -> Iterable[tuple[Chunk, "ChunkOutput | BaseException"]]: ...


#: (chunk's output, whether its init segments go with it) -> None; raises on failure
Publish = Callable[[ChunkOutput, bool], None]


def prepare(jobs: JobStore, name: str, path: str | Path, config: OrbitcastConfig,
            chunk_seconds: float | None = None, now: float | None = None) -> JobState:
    """The job of `name`: resumed when the store has one for the same file, else probed and
    planned anew. `NameTaken` when the name holds another file's recording; `VodInputError`
    when the file cannot be read."""
    feed = vod_feed(name)
    info = probe(path)  # first: a bad file fails with its reason before any hashing
    source = fingerprint(path)
    job = jobs.load(name)
    if job is not None:
        if (job.source.get("sha256"), job.source.get("size")) != (source["sha256"], source["size"]):
            raise NameTaken(f"the name {name!r} already holds a recording of another file "
                            f"({Path(job.source.get('path', '?')).name}); pick another name")
        return job
    d = config.segment_duration
    length = chunk_seconds if chunk_seconds else DEFAULT_CHUNK_SEGMENTS * d
    chunks = plan_chunks(info.keyframes, info.duration, d, length)
    # Media time starts at the segment boundary before the job began: seqs are floor(t / D) on
    # a wall-clock timeline as live feeds' are, and program date-times are job start + offset.
    epoch = math.floor((time.time() if now is None else now) / d) * d
    job = JobState(name=name, feed=feed, source=source, epoch=epoch, origin=info.origin, duration=info.duration,
                   segment_duration=d, chunks=[ChunkState(c) for c in chunks])
    jobs.save(job)
    return job


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_inits(job: JobState, out: ChunkOutput, config: OrbitcastConfig) -> None:
    """Every chunk must make the init segments the first one made, byte for byte: players get
    one init per rung (`EXT-X-MAP`) for the whole recording."""
    got = {r: digest(b) for r, b in out.inits.items()}
    if set(got) != {r.name for r in config.ladder.rungs}:
        raise InitMismatch(f"chunk {out.index} made init segments for {sorted(got)}, not for every rung")
    if not job.inits:
        job.inits = got
        infos = [rendition_info(config, r, out.inits[r]) for r in sorted(got)]
        job.renditions = [info.__dict__ for info in infos if info is not None]
        return
    for rendition, d in got.items():
        if job.inits.get(rendition) != d:
            raise InitMismatch(f"chunk {out.index}: the init segment of rung {rendition} differs from the job's "
                               f"({d[:12]} vs {job.inits.get(rendition, '-')[:12]}): the encoder settings differ "
                               f"between chunks, so they cannot share one init")


def check_aligned(out: ChunkOutput, chunk: Chunk, epoch: float, d: float) -> None:
    """Every rung has the same seqs over the same times, inside the chunk's span."""
    spans: dict[str, list[tuple[int, float]]] = {}
    for s in out.segments:
        spans.setdefault(s.rendition, []).append((s.seq, round(s.start, 3)))
    if not spans:
        raise VodError(f"chunk {chunk.index} ({chunk.start:.3f}-{chunk.end:.3f} s) made no segment")
    first = next(iter(spans.values()))
    for rendition, got in spans.items():
        if got != first:
            raise VodError(f"chunk {chunk.index}: rung {rendition}'s segments do not align with the others'")
    lo, hi = math.floor((epoch + chunk.start) / d + 1e-6), math.ceil((epoch + chunk.end) / d - 1e-6)
    if any(not lo <= seq < max(hi, lo + 1) for seq, _ in first):
        raise VodError(f"chunk {chunk.index}: a segment falls outside the chunk's span")


def run_job(job: JobState, jobs: JobStore, config: OrbitcastConfig, runner: Runner, publish: Publish,
            progress: Callable[[JobState], None] | None = None,
            clock: Callable[[], float] = time.monotonic) -> JobState:
    """Run the chunks not done yet; the job's final state (`done`), or raise the `VodError`
    that failed it (the state says `failed` with that reason)."""
    pending = job.pending()
    job.state = "running" if pending else "done"
    job.errors = []
    job.runs.append({"at": time.time(), "done_before": job.done_count, "transcoded": 0})
    jobs.save(job)
    if progress:
        progress(job)
    by_index = {c.chunk.index: c for c in job.chunks}
    started, made, inits_sent = clock(), 0, False
    results: Iterator = iter(runner(pending)) if pending else iter(())
    try:
        for chunk, result in results:
            if isinstance(result, BaseException):
                raise ChunkFailed(chunk.index, chunk.start, chunk.end, _why(result))
            check_inits(job, result, config)
            check_aligned(result, chunk, job.epoch, job.segment_duration)
            publish(result, not inits_sent)
            inits_sent = True
            state = by_index[chunk.index]
            state.done = True
            state.digests = {}
            for s in result.segments:
                state.digests.setdefault(s.rendition, []).append(s.digest)
            made += 1
            job.runs[-1]["transcoded"] = made
            left = len(job.pending())
            job.eta_s = round((clock() - started) / made * left, 1)
            jobs.save(job)
            if progress:
                progress(job)
    except VodError as err:
        job.state = "failed"
        job.errors.append(str(err))
        job.eta_s = None
        jobs.save(job)
        raise
    job.state, job.eta_s = "done", 0.0
    jobs.save(job)
    if progress:
        progress(job)
    return job


def _why(err: BaseException) -> str:
    cause = getattr(err, "cause", None)  # a Ray task error carries the chunk's own exception
    err = cause if isinstance(cause, BaseException) else err
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__
