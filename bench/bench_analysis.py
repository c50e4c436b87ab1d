"""Cost of the analysis stage per sampled picture, and what a feed costs at a sample rate.

For each picture size and BlazeFace range: pictures with one face (skimage's astronaut
photograph placed in a 16:9 studio frame) and without (a plain frame), run through
`FrameAnalyzer` (detection, and classification of each face) on one thread. Reported per
picture: the median CPU time of this thread (what a core gives to it; wall time is shown too,
since other processes share the machine), the share of one core a feed takes at
`--sample-fps`, and the highest sample rate one core keeps up with (1 / cost).

Also the live path's own part: turning a decoded 1280x720 yuv420p picture into the sample
(scaled to the analysis width, RGB, a numpy array), which the transcoder does for each sample.

    .venv/bin/python -m bench.bench_analysis --repeat 200 --json /tmp/bench_analysis.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from orbitcast.analysis import FrameAnalyzer
from orbitcast.analysis.sampling import scaled_size


def pictures(width: int, height: int) -> dict[str, np.ndarray]:
    from skimage.data import astronaut

    studio = np.full((720, 1280, 3), 40, np.uint8)
    studio[100:612, 600:1112] = astronaut()
    if (width, height) != (1280, 720):
        studio = np.asarray(Image.fromarray(studio).resize((width, height), Image.Resampling.BILINEAR))
    return {"face": studio, "no face": np.full((height, width, 3), 128, np.uint8)}


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median thread CPU time and wall time of `fn()`, seconds."""
    fn()  # warm up (first invocation allocates)
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.thread_time(), time.perf_counter()
        fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def sample_cost(width: int, repeat: int) -> tuple[float, float]:
    frame = av.VideoFrame.from_ndarray(pictures(1280, 720)["face"], format="rgb24").reformat(format="yuv420p")
    reformatter = av.video.reformatter.VideoReformatter()
    w, h = scaled_size(frame.width, frame.height, width)
    return timed(lambda: reformatter.reformat(frame, width=w, height=h, format="rgb24").to_ndarray(), repeat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--sample-fps", type=float, default=2.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = []
    for range_ in ("full", "short"):
        analyzer = FrameAnalyzer.default(range_=range_)  # type: ignore[arg-type]
        for width, height in ((640, 360), (1280, 720)):
            for kind, picture in pictures(width, height).items():
                faces = len(analyzer.analyze(picture).faces)
                cpu, wall = timed(lambda: analyzer.analyze(picture), args.repeat)
                rows.append({"detector": range_, "size": f"{width}x{height}", "picture": kind, "faces": faces,
                             "cpu_ms": cpu * 1e3, "wall_ms": wall * 1e3, "core_share": cpu * args.sample_fps,
                             "max_fps_per_core": 1 / cpu if cpu > 0 else None})
    to_sample = {}
    for width in (640, 1280):
        cpu, wall = sample_cost(width, args.repeat)
        to_sample[str(width)] = {"cpu_ms": cpu * 1e3, "wall_ms": wall * 1e3}
    print(f"analysis per sampled picture (median of {args.repeat}, one thread; core share at {args.sample_fps:g}/s)")
    print(f"{'detector':8} {'size':9} {'picture':8} {'faces':>5} {'cpu ms':>7} {'wall ms':>7} {'core %':>7} {'max fps':>8}")
    for r in rows:
        print(f"{r['detector']:8} {r['size']:9} {r['picture']:8} {r['faces']:5d} {r['cpu_ms']:7.2f} {r['wall_ms']:7.2f} "
              f"{100 * r['core_share']:6.2f}% {r['max_fps_per_core']:8.0f}")
    for width, r in to_sample.items():
        print(f"live path: 1280x720 yuv420p -> {width} wide RGB sample: {r['cpu_ms']:.2f} ms CPU ({r['wall_ms']:.2f} ms wall)")
    if args.json:
        args.json.write_text(json.dumps({"sample_fps": args.sample_fps, "repeat": args.repeat, "rows": rows,
                                         "to_sample": to_sample}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
