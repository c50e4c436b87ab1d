"""Frame analysis on a live pipeline, read with real clients: a feed made from the astronaut
photograph (her face for 4 s, then 2 s of plain grey, looped) runs with analysis on; the media
playlists of every rung carry an EXT-X-DATERANGE per analysed segment (X-FACES=1 and "happy"
where her face is, X-FACES=0 where it is not), which the m3u8 parser, ffprobe and hls.js read;
/api/analysis answers the same; killing the analyser mid-stream leaves the stream publishing.

A pipeline of its own (`own_cluster`: it runs before the shared one): an analysed feed in the
shared pipeline would cost every other test a third of a core or more (docs/analysis.md), this
one costs a minute or two once (most of it starting Ray and the pipeline).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

import m3u8
import pytest
import requests
from aiohttp import web
from threema.gateway import Connection, e2e

pytest.importorskip("ai_edge_litert", reason="the analysis extra is not installed")
pytest.importorskip("skimage", reason="scikit-image (the analysis extra) is not installed")

from orbitcast.analysis import available  # noqa: E402
from orbitcast.config import parse_config  # noqa: E402
from orbitcast.sealed_delivery import parse_tag_text  # noqa: E402
from orbitcast.sealing.keys import write_new_identity_key  # noqa: E402
from tests.astro import make_astronaut_feed  # noqa: E402
from tests.conftest import reserved_port  # noqa: E402
from tests.hls import seq_of, whole_segments  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

pytestmark = [pytest.mark.own_cluster, pytest.mark.e2e]
if (_why := available()) is not None:
    pytest.skip(_why, allow_module_level=True)

FEED = "astro"
THREEMA = "https://msgapi.threema.ch"  # the SDK's gateway, replaced by the pipeline's /threema
RUNGS = ("180p", "90p")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Pipeline:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.base = pipeline.url.rstrip("/")
        self.subscriber: TagSubscriber | None = None

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(self.base + path, params=params, timeout=15)

    def playable(self) -> bool:
        r = self.get("/api/feeds")  # 404 while the Serve apps deploy (in the background at start)
        feed = {f["feed"]: f for f in r.json()["feeds"]}.get(FEED, {}) if r.status_code == 200 else {}
        return bool(feed.get("last_segment")) and len(feed.get("renditions", [])) == len(RUNGS)

    def playlist(self, rung: str, **params: str) -> tuple[str, m3u8.M3U8]:
        r = self.get(f"/live/{FEED}/{rung}/index.m3u8", **params)
        assert r.status_code == 200, r.text
        return r.text, m3u8.loads(r.text)


class TagSubscriber:
    """A subscriber that asked for the tags (`tags: true`), run by the official Threema SDK: its
    callback server opens every message the gateway POSTs; the texts are kept."""

    IDENTITY = "*TAGSUB1"

    def __init__(self, keys_dir: Path) -> None:
        _, self.keys = write_new_identity_key(self.IDENTITY, keys_dir)
        self.secret = secrets.token_urlsafe(16)
        self.port = reserved_port()
        self.texts: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def recipient(self) -> dict:
        # one small rung of media too: what every subscriber gets
        return {"identity": self.IDENTITY, "public_key": self.keys.public_string, "secret": self.secret,
                "callback_url": f"http://127.0.0.1:{self.port}/callback", "feeds": [FEED], "renditions": ["90p"],
                "tags": True}

    def start(self, gateway: str) -> None:
        async def run() -> tuple:
            conn = Connection(self.IDENTITY, self.secret, key=self.keys.private_string)
            conn.urls = {k: v.replace(THREEMA, gateway) for k, v in Connection.urls.items()}
            app = e2e.create_application(conn)

            async def handler(message) -> None:
                if message.type == e2e.Message.Type.text_message:
                    self.texts.append(message.text)

            e2e.add_callback_route(conn, app, handler, path="/callback")
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            return runner, conn

        self.thread.start()
        self.runner, self.conn = asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        asyncio.run_coroutine_threadsafe(self.conn.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def astro(tmp_path_factory: pytest.TempPathFactory):
    import ray
    from ray import serve

    from pipelines.live import start
    from pipelines.local import init_local_ray

    assert not ray.is_initialized(), "own_cluster: this module must run before the shared Ray starts"
    tmp = tmp_path_factory.mktemp("analysis-live")
    clip = make_astronaut_feed(tmp / "astro.mp4")  # 320x180, 10 fps: cheap to transcode and to analyse
    subscriber = TagSubscriber(tmp / "subscriber-keys")
    port = reserved_port()
    config = parse_config({
        "feeds": [{"name": FEED, "source": str(clip), "loop": True, "slate_after": None}],
        "ladder": {"rungs": [{"name": "180p", "width": 320, "height": 180, "video_bitrate": 250_000},
                             {"name": "90p", "width": 160, "height": 90, "video_bitrate": 100_000}],
                   "audio_bitrate": 64_000, "preset": "ultrafast"},
        "analysis": {"enabled": True, "sample_fps": 2.0},
        "transcoders": 1,
        "store": str(tmp / "store"),
        "threema": {"keys_dir": str(tmp / "keys"), "recipients": [subscriber.recipient()]},
        "serve": {"host": "127.0.0.1", "port": port},
        "clock": {"ntp_port": reserved_port()},
    })
    subscriber.start(f"http://127.0.0.1:{port}/threema")  # listening before the first message
    init_local_ray(namespace="orbitcast-analysis-test", num_cpus=4, log_to_driver=False)
    pipeline = start(config)
    try:
        live = Pipeline(pipeline)
        live.subscriber = subscriber
        wait_for("the feed in every rung", lambda: live.playable(), timeout=120)
        yield live
    finally:
        pipeline.stop()
        serve.shutdown()
        ray.shutdown()
        subscriber.stop()


def dateranges(pl: m3u8.M3U8) -> dict[int, m3u8.model.DateRange]:
    """The analysis tags by seq (m3u8 hangs a DATERANGE on the next segment or its first part)."""
    found = [d for s in pl.segments for d in [*s.dateranges, *(d for p in s.parts for d in p.dateranges)]]
    out = {int(d.id.removeprefix("expr-")): d for d in found if d.class_ == "org.orbitcast.expression"}
    assert len(out) == len(found), "an analysis tag twice, or a DATERANGE of another class"
    return out


def attrs(d: m3u8.model.DateRange) -> dict[str, str]:
    return {k: v.strip('"') for k, v in d.x_client_attrs}


def test_segments_are_tagged_in_every_rung_where_her_face_is_and_where_it_is_not(astro: Pipeline) -> None:
    def both_kinds() -> dict | None:
        tags = dateranges(astro.playlist("180p")[1])
        kinds = {attrs(d)["x_faces"] for d in tags.values()}
        return tags if {"0", "1"} <= kinds else None

    wait_for("tags with and without her face", both_kinds)
    for rung in RUNGS:
        _, pl = astro.playlist(rung)
        tags = dateranges(pl)
        by_seq = {seq_of(s): s for s in whole_segments(pl)}
        assert tags, rung
        for seq, d in tags.items():
            a = attrs(d)
            # dated as its segment: same program date-time and duration as the segment it tags
            assert seq in by_seq, f"a tag for seq {seq}, which {rung} does not list as a segment"
            assert d.start_date == by_seq[seq].program_date_time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            assert d.duration == pytest.approx(by_seq[seq].duration, abs=1e-4)
            if a["x_faces"] == "1":
                assert a["x_expression"] == "happy" and 0.5 < float(a["x_confidence"]) <= 1.0, (rung, seq, a)
            else:
                assert a == {"x_faces": "0"}, (rung, seq, a)
    # the rungs carry the same tags for the seqs they both list
    low, high = dateranges(astro.playlist("90p")[1]), dateranges(astro.playlist("180p")[1])
    common = set(low) & set(high)
    assert common and all(attrs(low[s]) == attrs(high[s]) and low[s].start_date == high[s].start_date for s in common)


def test_a_delta_update_keeps_the_tags_of_the_segments_it_skips(astro: Pipeline) -> None:
    def a_delta() -> tuple | None:
        full = dateranges(astro.playlist("180p")[1])
        text, delta = astro.playlist("180p", _HLS_skip="YES")
        return (full, text, delta) if delta.skip and delta.skip.skipped_segments else None

    full, text, delta = wait_for("a delta update", a_delta)
    skipped = range(delta.media_sequence, delta.media_sequence + delta.skip.skipped_segments)
    kept = dateranges(delta)
    assert delta.server_control.can_skip_dateranges == "YES"
    # tags never change, and a tag the full playlist had for a skipped seq is still in the delta
    in_full = {s for s in full if s in skipped}
    assert in_full and in_full <= set(kept)
    assert all(attrs(kept[s]) == attrs(full[s]) for s in in_full)


def test_a_v2_delta_update_leaves_out_the_tags_a_player_already_has(astro: Pipeline) -> None:
    """_HLS_skip=v2, as hls.js asks once CAN-SKIP-DATERANGES is offered: the tags that were in
    the playlist longer than the Skip Boundary are left out (a player that may ask for a delta
    has them), so the update is shorter than the YES one; what it holds is what the full
    playlist holds, and a player merging it into the playlist it had keeps every tag."""
    def a_v2_that_leaves_tags_out() -> tuple | None:
        # The full playlists are fetched around the delta, and the YES one after it: a tag that
        # arrives in between (the analysis lags its segment) must not pass for one left out.
        before = dateranges(astro.playlist("180p")[1])
        text, v2 = astro.playlist("180p", _HLS_skip="v2")
        after = dateranges(astro.playlist("180p")[1])
        if not (v2.skip and v2.skip.skipped_segments):
            return None
        skipped = range(v2.media_sequence, v2.media_sequence + v2.skip.skipped_segments)
        left_out = {s for s in after if s in skipped} - set(dateranges(v2))
        return (before, text, v2, after, left_out) if left_out else None

    before, text, v2, after, left_out = wait_for("a v2 delta update without the old tags", a_v2_that_leaves_tags_out)
    _, yes = astro.playlist("180p", _HLS_skip="YES")
    assert "#EXT-X-VERSION:10" in text.splitlines()
    assert v2.skip.recently_removed_dateranges is not None  # the attribute is there, empty or not
    sent = dateranges(v2)
    assert all(attrs(sent[s]) == attrs(after[s]) for s in set(sent) & set(after))  # tags never change
    # The YES update keeps the tags of the segments it skips; v2 is the shorter for them.
    still_listed = {s for s in left_out if s >= yes.media_sequence}
    assert still_listed <= set(dateranges(yes)), sorted(still_listed - set(dateranges(yes)))
    # Every tag of a skipped segment that the full playlist lists and the delta leaves out is
    # one the player already had.
    assert left_out <= set(before), sorted(left_out - set(before))


def test_a_subscriber_that_asked_for_the_tags_gets_each_sealed_as_a_text_message(astro: Pipeline) -> None:
    """The official SDK opens them (sealed with the sender's key to the subscriber's); each is
    the tag the playlists carry for that seq."""
    sub = astro.subscriber
    assert sub is not None
    def some_tags() -> list[dict] | None:
        found = [t for t in map(parse_tag_text, list(sub.texts)) if t]
        return found if len(found) >= 3 else None

    tags = wait_for("three tags as text messages", some_tags)
    assert all(t["feed"] == FEED for t in tags)
    listed = dateranges(astro.playlist("180p")[1])
    common = [t for t in tags if t["seq"] in listed]
    assert common, ([t["seq"] for t in tags], sorted(listed))
    for t in common:
        a = attrs(listed[t["seq"]])
        assert a["x_faces"] == str(t["faces"]), (t, a)
        if t["faces"]:
            assert a["x_expression"] == t["expression"] and float(a["x_confidence"]) == pytest.approx(t["confidence"], abs=1e-3)


def test_ffprobe_reads_the_tagged_playlists(astro: Pipeline) -> None:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries", "stream=codec_type,width,height",
                          f"{astro.base}/live/{FEED}/master.m3u8"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    video = {(s["width"], s["height"]) for s in json.loads(out.stdout)["streams"] if s["codec_type"] == "video"}
    assert video == {(320, 180), (160, 90)}


def test_the_api_answers_the_same_tags(astro: Pipeline) -> None:
    _, pl = astro.playlist("180p")
    tags = dateranges(pl)
    r = astro.get(f"/api/analysis/{FEED}")
    assert r.status_code == 200
    by_seq = {s["seq"]: s for s in r.json()["segments"]}
    common = set(tags) & set(by_seq)
    assert common
    for seq in common:
        a, s = attrs(tags[seq]), by_seq[seq]
        assert str(s["faces"]) == a["x_faces"] and s["program_date_time"] == tags[seq].start_date
        if s["faces"]:
            assert s["expression"] == a["x_expression"] == "happy" and s["probabilities"]["happy"] == s["confidence"]
    assert astro.get(f"/api/analysis/{FEED}", start="not a time").status_code == 400
    assert astro.get("/api/analysis/nosuchfeed").status_code == 404


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_the_viewer_page_shows_faces_and_expression_of_the_moment(astro: Pipeline) -> None:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = browser.new_page()
            page.goto(f"{astro.base}/?feed={FEED}")
            seen: set[str] = set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not {"faces: 0", "faces: 1"} <= {t.split(",")[0] for t in seen}:
                text = page.evaluate("() => { const o = document.getElementById('analysis'); return o.hidden ? '' : o.textContent; }")
                if text:
                    seen.add(text)
                time.sleep(0.25)
        finally:
            browser.close()
    faced = [t for t in seen if t.startswith("faces: 1")]
    assert faced and all(t.startswith("faces: 1, happy (") for t in faced), seen
    assert "faces: 0" in seen, seen


def test_killing_the_analyser_mid_stream_leaves_the_stream_publishing(astro: Pipeline) -> None:
    import ray

    from actors.analysis import actor_name

    _, pl = astro.playlist("180p")
    newest_tag = max(dateranges(pl))
    ray.kill(ray.get_actor(actor_name(FEED)), no_restart=True)
    killed_at = max(seq_of(s) for s in whole_segments(pl))
    # the live stream does not notice: segments keep coming, a second each, in every rung
    time.sleep(5.0)
    for rung in RUNGS:
        _, after = astro.playlist(rung)
        assert max(seq_of(s) for s in whole_segments(after)) >= killed_at + 3, rung
    # tags already sent stay as they were
    assert attrs(dateranges(astro.playlist("180p")[1])[newest_tag]) == attrs(dateranges(pl)[newest_tag])

    # the transcoder's link makes a new analyser; tags of later segments come again
    def new_tags() -> bool:
        return any(seq > newest_tag + 2 for seq in dateranges(astro.playlist("180p")[1]))

    wait_for("tags from a new analyser", new_tags, timeout=45)
