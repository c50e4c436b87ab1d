"""A recording job without Ray (orbitcast/vod): probing bad files, chunks through the live
transcoder sharing one init, state in the store, resume after a kill, a failing chunk named."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from orbitcast.config import OrbitcastConfig, parse_config
from orbitcast.segment import Segment
from orbitcast.store import Store
from orbitcast.vod.chunk import ChunkOutput, transcode_chunk
from orbitcast.vod.errors import ChunkFailed, InitMismatch, NameTaken, VodInputError
from orbitcast.vod.job import prepare, run_job
from orbitcast.vod.plan import Chunk
from orbitcast.vod.probe import probe
from orbitcast.vod.state import JobState, JobStore
from tests.media import make_clip, make_corrupt, make_truncated

LADDER = {"rungs": [{"name": "180p", "width": 320, "height": 180, "video_bitrate": 300_000},
                    {"name": "90p", "width": 160, "height": 90, "video_bitrate": 100_000}], "audio_bitrate": 64_000}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("vod") / "clip.mp4", seconds=6.0, width=160, height=90, fps=25, gop=25)


@pytest.fixture()
def config(tmp_path: Path) -> OrbitcastConfig:
    return parse_config({"ladder": LADDER, "store": str(tmp_path / "store")})


def local_runner(job: JobState, path: Path, config: OrbitcastConfig, calls: list[int], stop_after: int | None = None):
    """Chunks one after another in this process; `stop_after`: the process dies after so many."""

    def run(chunks: list[Chunk]) -> Iterator[tuple[Chunk, ChunkOutput | BaseException]]:
        for n, c in enumerate(chunks):
            if stop_after is not None and n == stop_after:
                raise KeyboardInterrupt  # as a kill: nothing after this point runs
            calls.append(c.index)
            yield c, transcode_chunk(str(path), c, feed=job.feed, origin=job.origin, epoch=job.epoch,
                                     ladder=config.ladder, segment_duration=config.segment_duration,
                                     part_duration=config.part_duration)

    return run


class Published:
    def __init__(self) -> None:
        self.outputs: list[ChunkOutput] = []
        self.with_inits: list[bool] = []

    def __call__(self, out: ChunkOutput, with_inits: bool) -> None:
        self.outputs.append(out)
        self.with_inits.append(with_inits)

    def segments(self, rendition: str) -> list[Segment]:
        return sorted((s for o in self.outputs for s in o.segments if s.rendition == rendition), key=lambda s: s.seq)


# -- bad input -------------------------------------------------------------------------------
def test_a_corrupt_file_is_refused_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(VodInputError, match=r"bad\.mp4: not a media file FFmpeg can read \(Invalid data"):
        probe(make_corrupt(tmp_path / "bad.mp4"))


def test_a_missing_file_and_one_without_video(tmp_path: Path) -> None:
    with pytest.raises(VodInputError, match="no such file"):
        probe(tmp_path / "none.mp4")
    import av
    import numpy as np

    sound = tmp_path / "sound.m4a"
    with av.open(str(sound), "w") as out:
        s = out.add_stream("aac", rate=48000)
        s.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), dtype=np.float32), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(s.encode(frame))
        out.mux(s.encode(None))
    with pytest.raises(VodInputError, match="no video stream"):
        probe(sound)


def test_a_truncated_file_is_refused(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(VodInputError, match="truncated.mp4"):
        probe(make_truncated(clip, tmp_path / "truncated.mp4"))


def test_probe_finds_keyframes_without_decoding(clip: Path) -> None:
    info = probe(clip)
    assert info.keyframes == tuple(float(k) for k in range(6)) and info.duration == pytest.approx(6.0)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")


# -- a job -----------------------------------------------------------------------------------
def test_chunks_share_one_init_and_align_across_rungs(clip: Path, config: OrbitcastConfig) -> None:
    jobs = JobStore(Store(config.store))
    job = prepare(jobs, "clip", clip, config, chunk_seconds=2)
    assert len(job.chunks) == 3 and job.epoch % config.segment_duration == 0
    published, calls = Published(), []
    done = run_job(job, jobs, config, local_runner(job, clip, config, calls), published)
    assert done.state == "done" and calls == [0, 1, 2]
    inits = [{r: hashlib.sha256(b).hexdigest() for r, b in o.inits.items()} for o in published.outputs]
    assert all(i == inits[0] for i in inits) and inits[0] == done.inits  # byte-identical per rung
    assert published.with_inits == [True, False, False]
    seqs = {r.name: [(s.seq, s.start) for s in published.segments(r.name)] for r in config.ladder.rungs}
    assert seqs["180p"] == seqs["90p"]
    first = int(job.epoch / config.segment_duration)
    assert [s for s, _ in seqs["180p"]] == list(range(first, first + 6))  # seq = floor(t / D), no gap
    # program date-times: the job's start plus media offset
    assert [s.program_date_time.timestamp() for s in published.segments("90p")] == [job.epoch + k for k in range(6)]


def test_a_killed_job_resumes_from_its_finished_chunks(clip: Path, config: OrbitcastConfig) -> None:
    jobs = JobStore(Store(config.store))
    job = prepare(jobs, "clip", clip, config, chunk_seconds=2)
    first, calls = Published(), []
    with pytest.raises(KeyboardInterrupt):
        run_job(job, jobs, config, local_runner(job, clip, config, calls, stop_after=2), first)
    saved = jobs.load("clip")
    assert saved is not None and saved.state == "running" and saved.done_count == 2
    again = prepare(jobs, "clip", clip, config, chunk_seconds=2)
    assert again.epoch == job.epoch  # the same timeline: the resumed chunks join the others
    second, calls2 = Published(), []
    done = run_job(again, jobs, config, local_runner(again, clip, config, calls2), second)
    assert calls2 == [2] and done.runs[-1] == {**done.runs[-1], "done_before": 2, "transcoded": 1}
    assert second.with_inits == [True]  # a new run's packager gets the init again
    assert done.state == "done" and done.eta_s == 0


def test_the_same_name_for_another_file_is_refused(clip: Path, config: OrbitcastConfig, tmp_path: Path) -> None:
    jobs = JobStore(Store(config.store))
    prepare(jobs, "clip", clip, config)
    other = make_clip(tmp_path / "other.mp4", seconds=2.0, width=160, height=90, gop=25)
    with pytest.raises(NameTaken, match="already holds a recording of another file"):
        prepare(jobs, "clip", other, config)


def test_a_failing_chunk_fails_the_job_naming_it(clip: Path, config: OrbitcastConfig) -> None:
    jobs = JobStore(Store(config.store))
    job = prepare(jobs, "clip", clip, config, chunk_seconds=2)

    def runner(chunks: list[Chunk]) -> Iterator[tuple[Chunk, ChunkOutput | BaseException]]:
        yield chunks[1], RuntimeError("x264 ran out of memory")

    with pytest.raises(ChunkFailed, match=r"chunk 1 \(2.000-4.000 s\) failed: x264 ran out of memory"):
        run_job(job, jobs, config, runner, Published())
    status = jobs.load("clip").status()
    assert status["state"] == "failed" and status["errors"] == ["chunk 1 (2.000-4.000 s) failed: x264 ran out of memory"]


def test_a_chunk_with_another_init_fails_loudly(clip: Path, config: OrbitcastConfig) -> None:
    jobs = JobStore(Store(config.store))
    job = prepare(jobs, "clip", clip, config, chunk_seconds=2)
    calls: list[int] = []
    real = local_runner(job, clip, config, calls)

    def tampered(chunks: list[Chunk]) -> Iterator[tuple[Chunk, ChunkOutput | BaseException]]:
        for chunk, out in real(chunks):
            if chunk.index == 1:
                out.inits["90p"] = out.inits["90p"][:-1] + b"\x00"
            yield chunk, out

    with pytest.raises(InitMismatch, match="chunk 1: the init segment of rung 90p differs"):
        run_job(job, jobs, config, tampered, Published())
    assert jobs.load("clip").state == "failed"


def test_statuses_for_api_jobs(clip: Path, config: OrbitcastConfig) -> None:
    jobs = JobStore(Store(config.store))
    prepare(jobs, "clip", clip, config, chunk_seconds=2)
    [status] = jobs.statuses()
    assert status["name"] == "clip" and status["state"] == "planned"
    assert (status["chunks_done"], status["chunks_total"], status["url"]) == (0, 3, None)
