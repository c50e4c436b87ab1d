"""VOD throughput: `orbitcast transcode` (chunk-parallel Ray tasks, sealed and catalogued)
against the ffmpeg CLI doing the same ladder in one process (decode once, `split`, x264 with
the same preset, tune, bitrates and a keyframe every segment, AAC), on a generated 1080p file.

    .venv/bin/python -m bench.bench_vod                  # a 2-minute 1080p30 file
    .venv/bin/python -m bench.bench_vod --seconds 30     # shorter

Both run on every core of this machine. orbitcast's wall time is the whole job: probe and hash
of the file, plan, tasks, checks, sealing, catalog and ledger (the tqdm bar is off). Per-chunk
overhead is measured apart, so the time on N nodes can be estimated:
- scheduling: the round trip of an empty Ray task (median of 20, workers warm);
- start: the fixed cost of one chunk (open, seek, build the decoders and 3 encoders, the
  encoders' first frames, the last segment's flush): from a 1-segment and a 5-segment chunk
  transcoded in this process, t1 - (t5 - t1) / 4;
- publish: the driver's time per chunk handing it to the packager (seal, upload, ledger,
  catalog flush), measured in the job itself; it overlaps the next chunks' transcoding.
Results are printed and written to bench/results/vod-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from orbitcast.config import OrbitcastConfig, parse_config

RESULTS = Path(__file__).parent / "results"


def make_source(path: Path, seconds: float) -> Path:
    """1080p30 testsrc2 with a tone, H.264 veryfast (a keyframe every 2 s, as cameras and
    encoders commonly write) and AAC: what a recording might be."""
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p", "-b:v", "8M",
                    "-c:a", "aac", "-b:a", "128k", "-y", str(path)], check=True)
    return path


def ffmpeg(source: Path, cfg: OrbitcastConfig, out: Path) -> dict:
    rungs = cfg.ladder.rungs
    split = f"[0:v]split={len(rungs)}" + "".join(f"[s{i}]" for i in range(len(rungs))) + ";" + ";".join(
        f"[s{i}]scale={r.width}:{r.height}[v{i}]" for i, r in enumerate(rungs))
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), "-filter_complex", split]
    for i, r in enumerate(rungs):
        kbps = r.video_bitrate // 1000
        cmd += ["-map", f"[v{i}]", "-map", "0:a", "-c:v", "libx264", "-preset", cfg.ladder.preset, "-tune", "zerolatency",
                "-b:v", str(r.video_bitrate), "-maxrate", f"{int(kbps * 1.2)}k", "-bufsize", f"{kbps * 2}k",
                "-force_key_frames", f"expr:gte(t,n_forced*{cfg.segment_duration})", "-x264-params", "scenecut=0",
                "-c:a", "aac", "-b:a", str(cfg.ladder.audio_bitrate),
                "-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe", "-y", str(out / f"{r.name}.mp4")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def ours(source: Path, cfg: OrbitcastConfig, chunk_seconds: float | None) -> dict:
    import ray

    from orbitcast.store import Store
    from orbitcast.vod.job import prepare, run_job
    from orbitcast.vod.state import JobStore
    from pipelines.vod import Publisher, ray_runner

    publish_s: list[float] = []
    outputs: list[dict] = []
    wall = time.perf_counter()
    jobs = JobStore(Store(cfg.store))
    job = prepare(jobs, "bench", source, cfg, chunk_seconds)
    prepared = time.perf_counter() - wall
    publisher = Publisher(cfg, job.feed)

    def timed_publish(out, with_inits: bool) -> None:  # noqa: ANN001
        t = time.perf_counter()
        publisher(out, with_inits)
        publish_s.append(time.perf_counter() - t)
        outputs.append({"index": out.index, **out.seconds})

    try:
        run_job(job, jobs, cfg, ray_runner(job, str(source), cfg, 0), timed_publish)
    finally:
        publisher.close()
    wall = time.perf_counter() - wall
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return {"wall_s": wall, "prepare_s": prepared, "chunks": len(job.chunks), "cpus": cpus,
            "chunk_seconds": job.chunks[0].chunk.end - job.chunks[0].chunk.start,
            "publish_s": {"median": statistics.median(publish_s), "total": sum(publish_s)},
            "chunk_open_s_median": statistics.median(o["open"] for o in outputs),
            "chunk_transcode_s": {"median": statistics.median(o["transcode"] for o in outputs),
                                  "total": sum(o["transcode"] for o in outputs)}}


def overheads(source: Path, cfg: OrbitcastConfig) -> dict:
    import ray

    from orbitcast.vod.chunk import transcode_chunk
    from orbitcast.vod.plan import Chunk
    from orbitcast.vod.probe import probe

    @ray.remote(num_cpus=1)
    def nothing() -> None:
        return None

    ray.get([nothing.remote() for _ in range(4)])  # workers started
    trips = []
    for _ in range(20):
        t = time.perf_counter()
        ray.get(nothing.remote())
        trips.append(time.perf_counter() - t)
    info = probe(source)
    d = cfg.segment_duration

    def chunk_time(segments: int) -> float:
        c = Chunk(0, 2 * d, (2 + segments) * d, 2 * d)  # on the grid and a keyframe (every 2 s)
        t = time.perf_counter()
        transcode_chunk(str(source), c, feed="vod.bench", origin=info.origin, epoch=1_700_000_000.0,
                        ladder=cfg.ladder, segment_duration=d, part_duration=cfg.part_duration)
        return time.perf_counter() - t

    t1, t5 = min(chunk_time(1) for _ in range(2)), chunk_time(5)
    return {"schedule_s": statistics.median(trips), "chunk_start_s": t1 - (t5 - t1) / 4,
            "per_segment_s": (t5 - t1) / 4, "one_segment_chunk_s": t1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the generated 1080p file")
    parser.add_argument("--chunk-seconds", type=float, default=None, help="chunk length (default: the job's, ten segments)")
    parser.add_argument("--keep", default=None, help="keep the source and outputs in this folder")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-vod-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        source = work / "source-1080p.mp4"
        if not source.exists():
            make_source(source, args.seconds)
        cfg = parse_config({"store": str(work / "store"), "threema": {"keys_dir": str(work / "keys")}})
        (work / "ffmpeg").mkdir(exist_ok=True)
        ref = ffmpeg(source, cfg, work / "ffmpeg")
        from pipelines.local import init_local_ray

        init_local_ray(namespace="bench-vod", log_to_driver=False)
        job = ours(source, cfg, args.chunk_seconds)
        over = overheads(source, cfg)
        result = {"seconds": args.seconds, "cores": os.cpu_count(), "ffmpeg": ref, "orbitcast": job, "overhead": over,
                  "speedup_vs_ffmpeg": ref["wall_s"] / job["wall_s"]}
        # On N nodes of k cores: the chunk work divides in rounds of N k chunks, the per-chunk
        # costs stay per chunk, the driver's publishing is serial and a round's chunks finish together.
        per_chunk = job["chunk_transcode_s"]["median"] + over["schedule_s"]
        result["model"] = {"per_chunk_s": per_chunk, "publish_per_chunk_s": job["publish_s"]["median"],
                           "note": "T(N) ~ prepare + ceil(chunks / (N * cpus)) * per_chunk + min(chunks, N * cpus) * publish"}
        print(f"ffmpeg CLI (one process, split):  {ref['wall_s']:.1f} s wall, {ref['cpu_s']:.1f} CPU s")
        print(f"orbitcast transcode ({job['chunks']} chunks of {job['chunk_seconds']:g} s, {job['cpus']} CPUs): "
              f"{job['wall_s']:.1f} s wall (prepare {job['prepare_s']:.1f} s, publish {job['publish_s']['total']:.1f} s "
              f"in all, chunk transcode median {job['chunk_transcode_s']['median']:.1f} s)")
        print(f"speed-up vs ffmpeg: {result['speedup_vs_ffmpeg']:.2f}x")
        print(f"per chunk: scheduling {over['schedule_s'] * 1000:.1f} ms, start {over['chunk_start_s']:.2f} s, "
              f"publish {job['publish_s']['median']:.2f} s; per segment {over['per_segment_s']:.2f} s")
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"vod-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(result, indent=2))
        print(f"written {out}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
