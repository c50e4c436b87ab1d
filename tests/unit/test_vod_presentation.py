"""`/vod/` answers (orbitcast/vod/presentation.py) that need no media: names, states, 404s."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orbitcast.delivery.names import BadName
from orbitcast.delivery.timeshift import Listed
from orbitcast.store import Store
from orbitcast.vod.plan import Chunk
from orbitcast.vod.presentation import VodPresentation
from orbitcast.vod.state import ChunkState, JobState, JobStore


def _job(state: str) -> JobState:
    job = JobState(name="talk", feed="vod.talk", source={"path": "/x/talk.mp4"}, epoch=1_700_000_000.0, origin=0.0,
                   duration=2.0, segment_duration=1.0,
                   chunks=[ChunkState(Chunk(0, 0.0, 2.0, 0.0, True), done=state == "done")], state=state,
                   inits={"90p": "ab" * 32},
                   renditions=[{"name": "90p", "width": 160, "height": 90, "bandwidth": 200_000,
                                "average_bandwidth": 164_000, "codecs": "avc1.64000c,mp4a.40.2", "frame_rate": 0.0}])
    return job


@pytest.fixture()
def vod(tmp_path: Path) -> tuple[VodPresentation, JobStore]:
    jobs = JobStore(Store(str(tmp_path)))
    asked = []

    def rows(feed, rendition, start, end):  # noqa: ANN001, ANN202 - the catalog's RowQuery
        asked.append((feed, rendition))
        return [Listed(1_700_000_000 + k, 1_700_000_000.0 + k, 1.0, (1_700_000_000 + k) * 1000, "0123456789ab")
                for k in range(2)]

    return VodPresentation(jobs, rows, None), jobs


def test_unknown_unfinished_and_malformed(vod) -> None:  # noqa: ANN001
    presentation, jobs = vod
    assert asyncio.run(presentation.answer("/vod/talk/master.m3u8", "")).status == 404
    jobs.save(_job("running"))
    answer = asyncio.run(presentation.answer("/vod/talk/master.m3u8", ""))
    assert answer.status == 404 and b"not ready: running, 0/1 chunks" in answer.body
    for bad in ("/vod/ta.lk/master.m3u8", "/vod/talk/index.html", "/vod/talk/90p/x/y"):
        with pytest.raises(BadName):
            asyncio.run(presentation.answer(bad, ""))


def test_a_finished_recording_is_a_vod_presentation(vod) -> None:  # noqa: ANN001
    presentation, jobs = vod
    jobs.save(_job("done"))
    master = asyncio.run(presentation.answer("/vod/talk/master.m3u8", "")).body.decode()
    assert "RESOLUTION=160x90" in master and "90p/index.m3u8" in master
    media = asyncio.run(presentation.answer("/vod/talk/90p/index.m3u8", "")).body.decode()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in media and media.rstrip().endswith("#EXT-X-ENDLIST")
    assert '#EXT-X-MAP:URI="init.mp4?v=0123456789ab"' in media and "1700000001.m4s" in media
    assert asyncio.run(presentation.answer("/vod/talk/360p/index.m3u8", "")).status == 404
    # no archive here: media is not served, never a crash
    assert asyncio.run(presentation.answer("/vod/talk/90p/1700000000.m4s", "")).status == 404
