"""CPU seconds per media second for each input video codec at 1080p, through the demo ladder.

A 1080p30 source with AAC stereo is made per codec by Debian's ffmpeg (not timed), then read
by `Source` (unpaced) and transcoded by one `LiveTranscoder` with the demo configuration's
ladder. Decoding alone is timed too, so the cost of the input codec can be told from the
cost of the ladder (which is the same for every input).

    .venv/bin/python -m bench.bench_codecs --seconds 5
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
from pathlib import Path

import av

from orbitcast.config import OrbitcastConfig
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder

CODECS = {
    "h264": ("ts", "-c:v libx264 -preset veryfast -bf 3 -b:v 8M"),
    "hevc": ("mp4", "-c:v libx265 -preset ultrafast -b:v 6M -x265-params log-level=none"),
    "mpeg2video": ("ts", "-c:v mpeg2video -b:v 15M"),
    "vp9": ("mkv", "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 6M"),
    "av1": ("mkv", "-c:v libsvtav1 -preset 12 -b:v 5M"),
}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make(path: Path, video: str, seconds: float) -> None:
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds), "-pix_fmt", "yuv420p",
           *video.split(), "-c:a", "aac", "-ac", "2", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)


def decode_only(path: Path) -> float:
    before = cpu()
    with av.open(str(path)) as c:
        for _ in c.decode(video=0):
            pass
    return cpu() - before


def transcode(path: Path) -> tuple[float, float]:
    cfg = OrbitcastConfig()
    before = cpu()
    src = Source(str(path), realtime=False, loop=False)
    tr = LiveTranscoder("bench", cfg.ladder, cfg.segment_duration, cfg.part_duration, src.open())
    batch, media = [], 0.0
    try:
        for unit in src.units():
            batch.append(unit)
            media = max(media, unit.time)
            if len(batch) >= 8:
                tr.push(batch)
                batch = []
    except SourceEnded:
        pass
    tr.push(batch)
    tr.flush()
    return cpu() - before, media + 1 / 30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="media per codec")
    ap.add_argument("--codecs", default=",".join(CODECS), help="comma-separated subset of " + ",".join(CODECS))
    args = ap.parse_args()
    rungs = [r.name for r in OrbitcastConfig().ladder.rungs]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.codecs.split(","):
            ext, video = CODECS[name]
            path = Path(tmp) / f"{name}.{ext}"
            make(path, video, args.seconds)
            dec = decode_only(path)
            total, media = transcode(path)
            print(json.dumps({
                "input": name, "size": "1920x1080", "fps": 30, "media_s": round(media, 3), "ladder": rungs,
                "decode_cpu_per_media_s": round(dec / media, 3),
                "transcode_cpu_per_media_s": round(total / media, 3),
            }), flush=True)


if __name__ == "__main__":
    main()
