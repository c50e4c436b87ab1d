"""`orbitcast export` on the live pipeline, run as a user runs it: a clip of the running feed
from its time-shift presentation, ffprobe's duration, ffmpeg decoding it, and
`orbitcast verify --recording` proving it against the ledger (and failing on one changed byte);
the same with --exact."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import m3u8
import pytest

from orbitcast.delivery.playlists import iso_ms
from orbitcast.media.fmp4 import iter_boxes

pytestmark = pytest.mark.e2e
FEED = "synth"
ROOT = Path(__file__).resolve().parents[2]
FRAME = 1 / 30  # the synth source's frame rate


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)


def continuous_range(live, seconds: int) -> tuple[datetime, datetime, datetime]:
    """(keyframe, start, end): `seconds` of media just behind the live edge that were all made
    (as in test_timeshift_live.py: a starved realtime source skips program date-times), starting
    0.4 s into a segment; the keyframe is that segment's first frame."""
    pl = m3u8.loads(live.get(f"/live/{FEED}/360p/index.m3u8").text)
    segs = [(s.current_program_date_time, s.duration) for s in pl.segments if s.uri and s.uri.count(".") == 1]
    for i in range(len(segs) - 2 - seconds, -1, -1):
        run = segs[i:i + seconds + 1]
        if all(abs((b[0] - a[0]).total_seconds() - a[1]) < 0.05 for a, b in zip(run, run[1:])):
            offset = timedelta(seconds=0.4)
            return run[0][0], run[0][0] + offset, run[-1][0] + offset
    raise AssertionError(f"no {seconds} s of continuous media in the live playlist: {segs}")


def test_an_exported_clip_plays_for_the_range_and_verifies_against_the_ledger(live, tmp_path: Path) -> None:
    live.wait_media(FEED, 12)
    keyframe, start, end = continuous_range(live, 4)
    out = tmp_path / "clip.mp4"
    proc = cli("export", FEED, "--from", iso_ms(start), "--to", iso_ms(end), "-o", str(out), "--url", live.base)
    assert proc.returncode == 0, proc.stderr
    # the highest rung, cut at the keyframe that starts the first segment, ending at `end`
    probe = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries",
                            "format=duration:stream=codec_type,height", str(out)],
                           capture_output=True, text=True, timeout=60, check=True)
    info = json.loads(probe.stdout)
    expected = (end - keyframe).total_seconds()
    assert abs(float(info["format"]["duration"]) - expected) <= FRAME + 0.002, (info, expected)
    assert {(s["codec_type"], s.get("height")) for s in info["streams"]} == {("video", 360), ("audio", None)}
    decoded = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(out), "-f", "null", "-"],
                             capture_output=True, text=True, timeout=60)
    assert decoded.returncode == 0 and decoded.stderr.strip() == "", decoded.stderr

    known = tmp_path / "known_ledgers"
    ledger = f"{live.base}/ledger/{FEED}"
    proc = cli("verify", "--recording", str(out), "--ledger", ledger, "--known-ledgers", str(known))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^clip samples +ok$", proc.stdout, re.M) and "proven:" in proc.stdout

    data = bytearray(out.read_bytes())
    _, first, last = next(b for b in iter_boxes(bytes(data)) if b[0] == b"mdat")
    data[(first + last) // 2] ^= 0x01  # one byte inside the samples
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    proc = cli("verify", "--recording", str(bad), "--ledger", ledger, "--known-ledgers", str(known))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED clip samples" in proc.stderr and "differs from the certified sample" in proc.stderr

    # --exact: starts at --from itself; all but the frames before the next keyframe are proven
    exact = tmp_path / "exact.mp4"
    proc = cli("export", FEED, "--from", iso_ms(start), "--to", iso_ms(end), "-o", str(exact), "--url", live.base,
               "--exact")
    assert proc.returncode == 0, proc.stderr
    probe = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries", "format=duration", str(exact)],
                           capture_output=True, text=True, timeout=60, check=True)
    assert abs(float(json.loads(probe.stdout)["format"]["duration"]) - (end - start).total_seconds()) <= FRAME + 0.002
    proc = cli("verify", "--recording", str(exact), "--ledger", ledger, "--known-ledgers", str(known))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 0.4 s into a 1 s segment: 0.6 s up to the next keyframe, 18 frames (17 when the program
    # date-time, given in ms, rounds the start past a frame)
    assert re.search(r"not covered: the first 1[78] video frames", proc.stdout), proc.stdout


def test_a_range_with_no_media_exits_2(live, tmp_path: Path) -> None:
    proc = cli("export", FEED, "--from", "2001-01-01T00:00:00Z", "--to", "2001-01-01T00:00:04Z",
               "-o", str(tmp_path / "clip.mp4"), "--url", live.base)
    assert proc.returncode == 2 and "no media in that range" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "clip.mp4").exists()
