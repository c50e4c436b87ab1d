"""The analysis stage on local Ray: a transcoder's AnalysisLink hands sampled pictures to the
feed's AnalysisActor without waiting, tags come back per segment, a flood is dropped and
counted, and an analyser killed mid-stream costs samples, never an error on the live side."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ai_edge_litert", reason="the analysis extra is not installed")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (test extra) is not installed")

import actors.analysis as analysis_actor  # noqa: E402
from actors.analysis import AnalysisLink, actor_name  # noqa: E402
from orbitcast.analysis import AnalysisConfig, available  # noqa: E402

pytestmark = pytest.mark.ray
if (_why := available()) is not None:
    pytest.skip(_why, allow_module_level=True)

CLOCK = 1_700_000_000.0


def _pictures() -> tuple[av.VideoFrame, av.VideoFrame]:
    studio = np.full((720, 1280, 3), 35, np.uint8)
    studio[100:612, 600:1112] = skimage_data.astronaut()
    face = av.VideoFrame.from_ndarray(studio, format="rgb24").reformat(format="yuv420p")
    plain = av.VideoFrame.from_ndarray(np.full((720, 1280, 3), 128, np.uint8), format="rgb24").reformat(format="yuv420p")
    return face, plain


def _wait_idle(link: AnalysisLink, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while link.gate.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
        link.send()
    assert link.gate.in_flight == 0, link.stats()


def test_link_and_actor_tag_segments_and_survive_a_killed_analyser(ray_session, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = ray_session
    monkeypatch.setattr(analysis_actor, "RETRY_S", 0.5)
    cfg = AnalysisConfig(enabled=True, sample_fps=2.0, queue=2)
    link = AnalysisLink.for_feed("astro-it", cfg, segment_duration=1.0)
    assert link is not None
    face, plain = _pictures()
    # 30 fps for 3 s: her face for two segments, then a plain one; one more picture closes seq 2
    for i in range(91):
        t = i / 30
        link.tap(face if t < 2.0 else plain, t, CLOCK + t)
        if i % 6 == 5:  # a push of the feed: the link hands on what the tap took
            link.send()
            _wait_idle(link)  # here only, so that nothing is dropped in this part of the test
    link.send()  # the last push
    _wait_idle(link)
    analyser = ray.get_actor(actor_name("astro-it"))
    tags = ray.get(analyser.summaries.remote())
    assert [(s["seq"], s["frames"], s["faces"], s["expression"]) for s in tags] == [
        (0, 2, 1, "happy"), (1, 2, 1, "happy"), (2, 2, 0, None)]
    assert tags[0]["start"] == pytest.approx(CLOCK) and tags[0]["confidence"] > 0.5
    latest = ray.get(analyser.latest.remote())
    assert latest["time"] == pytest.approx(3.0) and latest["faces"] == []
    assert link.stats()["dropped"] == 0

    # A flood: the samples of many pushes at once, nobody waiting. At most `queue` in flight.
    for i in range(91, 91 + 300):
        link.tap(face, i / 30, CLOCK + i / 30)
        if i % 6 == 5:
            link.send()
            assert link.gate.in_flight <= cfg.queue
    assert link.stats()["dropped"] > 0
    _wait_idle(link)

    # Killed mid-stream: send() goes on returning at once; samples are dropped, then a new
    # analyser is found and tags come again (from a fresh state).
    ray.kill(analyser, no_restart=True)
    t0 = 400 / 30
    started = time.monotonic()
    for k in range(120):
        t = t0 + k / 30
        link.tap(face, t, CLOCK + t)
        begin = time.monotonic()
        link.send()
        assert time.monotonic() - begin < 1.0, "send() waited"
        time.sleep(0.02)
        if link.failures and link._actor is not None and time.monotonic() - started > 1.0:
            break
    assert link.failures >= 1
    _wait_idle(link)
    for k in range(120, 160):
        t = t0 + k / 30
        link.tap(face, t, CLOCK + t)
        link.send()
        _wait_idle(link)
    again = ray.get_actor(actor_name("astro-it"))
    tags = ray.get(again.summaries.remote())
    assert tags and all(s["faces"] == 1 and s["expression"] == "happy" for s in tags)
    stats = ray.get(again.stats.remote())
    assert stats["link_failures"] >= 1 and stats["link_dropped"] > 0
    ray.kill(again, no_restart=True)
