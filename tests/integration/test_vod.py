"""`orbitcast transcode` end to end on the shared Ray and pipeline: a 40 s recording with sound,
killed halfway and run again, then played over HTTP from /vod/ by ffprobe/ffmpeg."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import m3u8
import pytest
import yaml

from orbitcast.catalog import Catalog
from orbitcast.delivery.names import init_tag
from orbitcast.store import Store
from orbitcast.vod.state import JobStore
from tests.media import make_clip, make_corrupt

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 40.0


def _job_env(ray_session) -> dict[str, str]:
    return {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address,
            "PYTHONPATH": str(ROOT), "RAY_DEDUP_LOGS": "0"}


def _transcode(env: dict, *args: str, entry: tuple[str, ...] = ("pipelines.vod",)) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *entry, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, live, ray_session) -> dict:
    """The recording transcoded: killed once past its first chunks, then run to the end."""
    d = tmp_path_factory.mktemp("vod")
    source = make_clip(d / "talk.mp4", seconds=SECONDS, width=320, height=180, fps=25, gop=25)
    config = d / "orbitcast.yaml"
    config.write_text(yaml.safe_dump(live.config.model_dump(mode="json")))
    env = _job_env(ray_session)
    jobs = JobStore(Store(live.config.store))
    args = [str(source), "--name", "talk", "--config", str(config), "--chunk-seconds", "4"]
    first = _transcode(env, *args, "--quiet")  # as `ray job submit -- python -m pipelines.vod` runs it
    deadline = time.monotonic() + 240
    killed_at = None
    while time.monotonic() < deadline and first.poll() is None:
        job = jobs.load("talk")
        if job is not None and job.done_count >= 2:
            first.send_signal(signal.SIGKILL)  # the process killed, as a node or a Ctrl-\ would
            first.wait()
            killed_at = jobs.load("talk")
            break
        time.sleep(0.05)
    assert killed_at is not None, f"the first run was not caught halfway: {first.communicate()}"
    second = _transcode(env, *args, entry=("pipelines.cli", "transcode"))  # `orbitcast transcode`
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    return {"killed": killed_at, "job": jobs.load("talk"), "stdout": out, "stderr": err, "config": config, "env": env}


def test_a_killed_job_resumes_without_redoing_finished_chunks(recording: dict) -> None:
    killed, job = recording["killed"], recording["job"]
    done_before = killed.done_count
    assert 2 <= done_before < len(killed.chunks)
    assert job.state == "done" and job.done_count == len(job.chunks)
    # the second run transcoded only what the first had not finished
    last = job.runs[-1]
    assert last["done_before"] == done_before
    assert last["transcoded"] == len(job.chunks) - done_before
    assert f"transcoded {last['transcoded']} of {len(job.chunks)} chunks ({done_before} done before)" in recording["stdout"]
    # the progress bar (tqdm, on stderr) starts at the chunks done before and ends at all of them
    total = len(job.chunks)
    assert f"{done_before} done before" in recording["stderr"] and f"{total}/{total}" in recording["stderr"]
    # the chunks finished before the kill kept their digests
    for before, after in zip(killed.chunks, job.chunks):
        if before.done:
            assert after.digests == before.digests


def test_every_rung_plays_over_http_aligned_and_from_one_init(recording: dict, live) -> None:
    job = recording["job"]
    master_url = f"{live.base}/vod/talk/master.m3u8"
    master = m3u8.loads(live.get("/vod/talk/master.m3u8").text, uri=master_url)
    assert {p.uri for p in master.playlists} == {f"{r.name}/index.m3u8" for r in live.config.ladder.rungs}
    lists = {}
    for p in master.playlists:
        rung = p.uri.split("/")[0]
        text = live.get(f"/vod/talk/{p.uri}").text
        media = m3u8.loads(text)
        assert media.playlist_type == "vod" and media.is_endlist
        assert "#EXT-X-GAP" not in text and "#EXT-X-DISCONTINUITY" not in text
        maps = {s.init_section.uri for s in media.segments}
        assert len(maps) == 1  # one init segment for every chunk's segments
        init = live.get(f"/vod/talk/{rung}/{maps.pop()}").content
        assert init_tag(init) == next(s.init_section.uri for s in media.segments).split("v=")[1]
        assert job.inits[rung] == hashlib.sha256(init).hexdigest()
        lists[rung] = media
        # every segment starts with an IDR picture
        for seg in media.segments:
            body = live.get(f"/vod/talk/{rung}/{seg.uri}").content
            with av.open(io.BytesIO(init + body)) as c:
                first = next(c.demux(c.streams.video[0]))
                assert first.is_keyframe, f"{rung}/{seg.uri} does not start with a keyframe"
        # ffprobe reads the rung over HTTP: its duration within one segment of the file's
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
                                f"{live.base}/vod/talk/{p.uri}"], capture_output=True, text=True, timeout=120)
        assert probe.returncode == 0, probe.stderr
        assert abs(float(json.loads(probe.stdout)["format"]["duration"]) - SECONDS) <= live.config.segment_duration
        # and ffmpeg decodes all of it, pictures and sound, without an error across chunk boundaries
        decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", f"{live.base}/vod/talk/{p.uri}", "-map", "0:v",
                                  "-map", "0:a", "-f", "null", "-"], capture_output=True, text=True, timeout=180)
        assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr
    # the same seqs over the same times in every rung
    rows = [[(s.uri, round(s.duration, 3), s.program_date_time) for s in m.segments] for m in lists.values()]
    assert all(r == rows[0] for r in rows)
    assert len(rows[0]) == round(SECONDS / live.config.segment_duration)


def test_segments_are_sealed_catalogued_and_certified(recording: dict, live) -> None:
    store = Store(live.config.store)
    rows = Catalog(store).query("vod.talk", columns=["rendition", "seq", "digest", "blob_ids", "sealed"])
    assert rows.num_rows == len(live.config.ladder.rungs) * round(SECONDS / live.config.segment_duration)
    assert all(rows.column("blob_ids").to_pylist()) and all(rows.column("sealed").to_pylist())
    log = Path(store.path("ledger", "vod.talk.log"))
    assert log.is_file() and log.stat().st_size > 0  # a leaf per segment, under the pipeline's key


def test_orbitcast_verify_proves_every_segment_of_the_recording(recording: dict, live, tmp_path: Path) -> None:
    """Certified like live segments: the pipeline's ledger holds them (the job found it running)
    and serves their proofs, so `orbitcast verify` checks the /vod/ presentation as it checks a
    live stream: every segment of every rung against a signed head."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}  # no ledger key pinned before
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "verify", f"{live.base}/vod/talk/master.m3u8"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[1:] if line.startswith("vod.talk/")]
    per_rung = round(SECONDS / live.config.segment_duration)
    assert len(rows) == len(live.config.ladder.rungs) * per_rung and all(r[1] == "ok" for r in rows), proc.stdout
    sth = live.get("/ledger/vod.talk/sth").json()
    assert sth["tree_size"] == len(rows), "one leaf per segment"
    # a finished recording's head is the one over its leaves: not signed again while idle, as
    # a live feed's is every segment duration (its log would only grow)
    time.sleep(2 * live.config.segment_duration)
    assert live.get("/ledger/vod.talk/sth").json()["timestamp"] == sth["timestamp"]


def test_api_jobs_shows_the_job_done(recording: dict, live) -> None:
    jobs = {j["name"]: j for j in live.get("/api/jobs").json()["jobs"]}
    talk = jobs["talk"]
    assert talk["state"] == "done" and talk["chunks_done"] == talk["chunks_total"] == len(recording["job"].chunks)
    assert talk["url"] == "/vod/talk/master.m3u8" and talk["errors"] == []


def test_a_corrupt_file_fails_at_once_with_its_reason(recording: dict, tmp_path: Path) -> None:
    bad = make_corrupt(tmp_path / "bad.mp4")
    run = subprocess.run([sys.executable, "-m", "pipelines.vod", str(bad), "--name", "bad", "--config",
                          str(recording["config"]), "--quiet"], cwd=ROOT, env=recording["env"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "bad.mp4: not a media file FFmpeg can read" in run.stderr and "Traceback" not in run.stderr


def test_unknown_and_malformed_recordings(live) -> None:
    assert live.get("/vod/nothing-here/master.m3u8").status_code == 404
    assert live.get("/vod/bad..name/master.m3u8").status_code == 400


def test_a_chunk_that_keeps_failing_fails_the_job_naming_it(live, ray_session, tmp_path: Path) -> None:
    """Ray tasks retried, then the job fails naming the chunk: the file is damaged after it was
    planned, so every attempt at chunk 1 fails to open it."""
    from orbitcast.vod.errors import ChunkFailed
    from orbitcast.vod.job import prepare, run_job
    from pipelines.vod import ray_runner

    source = make_clip(tmp_path / "short.mp4", seconds=4.0, width=160, height=90, fps=25, gop=25)
    jobs = JobStore(Store(str(tmp_path / "store")))
    job = prepare(jobs, "short", source, live.config, chunk_seconds=2)
    make_corrupt(source)  # damaged after planning
    with pytest.raises(ChunkFailed, match=r"chunk [01] \((0|2)\.000-(2|4)\.000 s\) failed: .*short\.mp4: cannot be opened"):
        run_job(job, jobs, live.config, ray_runner(job, str(source), live.config, retries=1), lambda *_: None)
    status = jobs.load("short").status()
    assert status["state"] == "failed" and "cannot be opened" in status["errors"][0]
