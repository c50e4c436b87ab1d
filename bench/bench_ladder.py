"""CPU seconds per media second for the demo ladder: orbitcast's transcoder vs the ffmpeg CLI.

Both decode the same synthetic source once and encode the same three rungs (x264 veryfast,
zerolatency, same bitrates, forced keyframes every 2 s) plus AAC; ffmpeg uses `split`. Neither
is paced, so CPU time per media second is the figure to compare.

    .venv/bin/python -m bench.bench_ladder --seconds 30
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time

from orbitcast.config import DEMO_SOURCE, OrbitcastConfig
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder


def ours(seconds: float) -> tuple[float, float]:
    cfg = OrbitcastConfig()
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    src = Source(cfg.feeds[0].source, realtime=False)
    tr = LiveTranscoder("bench", cfg.ladder, cfg.segment_duration, cfg.part_duration, src.open())
    batch = []
    try:
        for unit in src.units():
            batch.append(unit)
            if len(batch) >= 8:
                tr.push(batch)
                batch = []
            if unit.time >= seconds:
                break
    except SourceEnded:
        pass
    tr.push(batch)
    tr.flush()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, time.perf_counter() - wall


def ffmpeg(seconds: float) -> tuple[float, float]:
    cfg = OrbitcastConfig()
    graph = DEMO_SOURCE.removeprefix("lavfi:")
    rungs = cfg.ladder.rungs
    split = f"[0:v]split={len(rungs)}" + "".join(f"[s{i}]" for i in range(len(rungs))) + ";" + ";".join(
        f"[s{i}]scale={r.width}:{r.height}[v{i}]" for i, r in enumerate(rungs))
    # -t before -i bounds the input, so every output stops with it.
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-t", str(seconds), "-i", graph, "-filter_complex", split]
    for i, r in enumerate(rungs):
        kbps = r.video_bitrate // 1000
        cmd += ["-map", f"[v{i}]", "-map", "0:a", f"-c:v:{0}", "libx264", "-preset", cfg.ladder.preset, "-tune", "zerolatency",
                "-b:v", str(r.video_bitrate), "-maxrate", f"{int(kbps * 1.2)}k", "-bufsize", f"{kbps * 2}k",
                "-force_key_frames", f"expr:gte(t,n_forced*{cfg.segment_duration})", "-x264-params", "scenecut=0",
                "-c:a", "aac", "-b:a", str(cfg.ladder.audio_bitrate),
                "-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe", "-frag_duration", "500000", "-y", f"/tmp/bench-ffmpeg-{r.name}.mp4"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(cmd, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="media seconds to transcode")
    args = parser.parse_args()
    for name, run in (("ffmpeg CLI (split)", ffmpeg), ("orbitcast LiveTranscoder", ours)):
        cpu, wall = run(args.seconds)
        print(f"{name:26s} {cpu / args.seconds:.3f} CPU s per media s   ({cpu:.1f} CPU s, {wall:.1f} s wall, {args.seconds:.0f} s of media)")


if __name__ == "__main__":
    main()
