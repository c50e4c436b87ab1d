"""Shared fixtures: one local Ray instance for the whole session, and one live pipeline with a
synthetic feed, a file feed and a corrupt feed that the integration and end-to-end tests read."""

from __future__ import annotations

import os
import random
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orbitcast.config import OrbitcastConfig, parse_config  # noqa: E402
from orbitcast.sealing.keys import KeyPair, write_new_identity_key  # noqa: E402
from tests.media import make_clip, make_corrupt  # noqa: E402

TEST_LADDER = {
    "rungs": [
        {"name": "360p", "width": 640, "height": 360, "video_bitrate": 600_000},
        {"name": "240p", "width": 426, "height": 240, "video_bitrate": 300_000},
    ],
    "audio_bitrate": 96_000,
}
SYNTH = "lavfi:testsrc2=size=640x360:rate=30,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]"


SRT_PASSPHRASE = "orbitcast-test-passphrase"


def reserved_port() -> int:
    """A port that is free now and stays free for the session: taken from 20000-29999, above
    Ray's worker ports (10002-19999), below Serve's replica ports (30000-31000) and the
    kernel's ephemeral range, so no process that binds port 0 can take it before the test
    that needs it runs."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 30000)
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that start a Ray cluster of their own run before the shared one exists.
    items.sort(key=lambda item: 0 if item.get_closest_marker("own_cluster") else 1)


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from pipelines.local import init_local_ray

    # Started as `orbitcast demo` starts it: the same Serve ingress (HAProxy, direct ingress).
    init_local_ray(namespace="orbitcast-tests", num_cpus=4, log_to_driver=False)
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("media")
    make_clip(d / "clip.mp4", seconds=7.0)
    make_corrupt(d / "corrupt.mp4")
    return d


@dataclass(frozen=True)
class Subscriber:
    """A Threema recipient of the test pipeline, with its key file and callback port."""

    identity: str
    keys: KeyPair
    key_file: Path
    secret: str
    port: int
    feed: str
    rendition: str

    @property
    def callback_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def recipient(self) -> dict:
        return {"identity": self.identity, "public_key": self.keys.public_string, "callback_url": self.callback_url,
                "secret": self.secret, "feeds": [self.feed], "renditions": [self.rendition]}


@pytest.fixture(scope="session")
def subscribers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Subscriber]:
    """*SUBSCR1 is run by `orbitcast receive`; *SDKRECV by the official Threema SDK."""
    keys_dir = tmp_path_factory.mktemp("subscriber-keys")
    out = {}
    for identity, feed in (("*SUBSCR1", "synth"), ("*SDKRECV", "file")):
        path, pair = write_new_identity_key(identity, keys_dir)
        out[identity] = Subscriber(identity, pair, path, secrets.token_urlsafe(16), reserved_port(), feed, "240p")
    return out


@pytest.fixture(scope="session")
def pipeline_config(media_dir: Path, tmp_path_factory: pytest.TempPathFactory,
                    subscribers: dict[str, Subscriber]) -> OrbitcastConfig:
    return parse_config({
        "threema": {
            "keys_dir": str(tmp_path_factory.mktemp("pipeline-keys")),
            "recipients": [s.recipient() for s in subscribers.values()],
        },
        "feeds": [
            {"name": "synth", "source": SYNTH},
            {"name": "file", "source": str(media_dir / "clip.mp4"), "loop": True},
            {"name": "broken", "source": str(media_dir / "corrupt.mp4")},
            # A contribution feed: tests/e2e/test_ingest_live.py sends to it with Debian's ffmpeg.
            # No slate here: it would transcode a 720p card for the whole run on CI's two cores
            # (the slate is tested in test_feed_runner.py and test_slate.py).
            {"name": "dock", "source": f"srt://127.0.0.1:{reserved_port()}?mode=listener&passphrase={SRT_PASSPHRASE}&pbkeylen=16",
             "slate_after": None},
        ],
        "ladder": TEST_LADDER,  # segment, part and window durations: the shipped LL-HLS defaults
        # A DVR window of 30 s (shipped: 180) and one Delivery replica (shipped: two), for CI's
        # two cores: 30 s still lists past what a replica keeps (24 segments), so the DVR test
        # reads older ones from the archive; failover is measured by bench/bench_faults.py.
        "dvr_window": 30,
        "store": str(tmp_path_factory.mktemp("store")),
        "transcoders": 2,
        # Signed viewer URLs accepted (the browser test plays one), plain ones too.
        "serve": {"host": "127.0.0.1", "port": reserved_port(), "min_replicas": 1,
                  "viewer_auth": {"keys": {"test": secrets.token_urlsafe(32)}}},
        "clock": {"ntp_port": reserved_port(), "sync_interval_s": 0.5, "tick_interval_s": 0.5},
        # joules on every catalog row and /api/energy (tests/integration/test_energy_live.py)
        "energy": {"enabled": True},
    })


class Live:
    """The running test pipeline and how to reach it."""

    def __init__(self, pipeline, started: float) -> None:
        self.pipeline = pipeline
        self.config: OrbitcastConfig = pipeline.config
        self.base = pipeline.url.rstrip("/")
        self.started = started

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.base + path, timeout=10, **kw)

    def feeds(self) -> dict[str, dict]:
        return {f["feed"]: f for f in self.get("/api/feeds").json()["feeds"]}

    def wait_media(self, feed: str, seconds: float, timeout: float = 120) -> None:
        """Wait until `feed` has published segments covering `seconds` of media in every rung."""
        deadline = time.monotonic() + timeout
        rungs = [r.name for r in self.config.ladder.rungs]
        while time.monotonic() < deadline:
            try:
                r = self.get("/api/feeds")
            except requests.RequestException:  # the proxy may hold a request while apps deploy
                time.sleep(0.5)
                continue
            if r.status_code != 200:  # the Serve apps deploy in the background at start
                time.sleep(0.5)
                continue
            f = {x["feed"]: x for x in r.json()["feeds"]}.get(feed, {})
            last = f.get("last_segment")
            # timeline_start comes with the feed's health, once a second: an edge just started
            # again (tests/integration/test_resilience.py) shows the feed "starting" until then
            if last and len(f.get("renditions", [])) == len(rungs) and "timeline_start" in f:
                # seq counts segment durations on a timeline that began at timeline_start.
                if (last["seq"] + 1) * self.config.segment_duration - f["timeline_start"] >= seconds:
                    return
            time.sleep(0.5)
        raise AssertionError(f"feed {feed} did not reach {seconds}s of media in {timeout}s: {self.feeds().get(feed)}")


@pytest.fixture(scope="session")
def live(ray_session, pipeline_config: OrbitcastConfig) -> Live:
    from pipelines.live import start

    started = time.monotonic()
    pipeline = start(pipeline_config)
    live = Live(pipeline, started)
    live.wait_media("synth", 6)
    yield live
    pipeline.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "own_cluster: starts a Ray cluster of its own; runs before the shared one")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
