"""Sealed delivery on the live pipeline: the embedded gateway on Serve at /threema, the edge as
a Threema recipient, a subscriber running `orbitcast receive`, and the official Threema SDK as
another subscriber."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import m3u8
import pytest
import ray
import requests
from aiohttp import web
from threema.gateway import Connection, e2e

from orbitcast.sealing.callback import build_callback_fields, encode_callback
from orbitcast.sealing.keys import generate_key_pair, public_key_from_hex
from orbitcast.sealing.sealer import SegmentSealer

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
THREEMA = "https://msgapi.threema.ch"


def _decodes(path: Path) -> dict:
    """ffmpeg decodes the whole file without a word; its streams and extent as ffprobe reads them."""
    decode = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                            capture_output=True, text=True, timeout=60)
    assert decode.returncode == 0 and decode.stderr.strip() == "", decode.stderr
    return json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_entries", "stream=codec_type,width,height,start_time,duration:format=duration,start_time", str(path)],
        capture_output=True, check=True, timeout=60).stdout)


def _versions(live, feed: str, rendition: str) -> dict[int, list[dict]]:
    """Every catalogued version of each seq: a segment made again (a transcoder that took the
    feed over remakes the one in progress) has a row per version."""
    rows = live.pipeline.catalog_rows(feed)
    out: dict[int, list[dict]] = {}
    for r in rows:
        if r["feed"] == feed and r["rendition"] == rendition:
            out.setdefault(r["seq"], []).append(r)
    return out


def _segments_in(data: bytes, init: bytes, served: dict[int, list[dict]], first: int, last: int) -> list[dict]:
    """The file is the init segment, then, for each of seqs first..last, the bytes of a version
    the packager catalogued (by size and digest: also for seqs that have left the live window)."""
    assert data.startswith(init)
    offset = len(init)
    matched = []
    for seq in range(first, last + 1):
        match = next((v for v in served[seq]
                      if hashlib.sha256(data[offset:offset + v["bytes"]]).hexdigest() == v["digest"]), None)
        assert match is not None, (seq, [v["digest"] for v in served[seq]])
        offset += match["bytes"]
        matched.append(match)
    assert offset == len(data)
    return matched


def test_orbitcast_receive_writes_as_segments_arrive_and_stops_cleanly_on_sigterm(live, subscribers, tmp_path):
    sub = subscribers["*SUBSCR1"]
    live.wait_media(sub.feed, 10)
    out = tmp_path / "synth-240p.mp4"
    proc = subprocess.Popen(
        [str(BIN / "orbitcast"), "receive", "--identity", sub.identity, "--key", str(sub.key_file),
         f"--secret={sub.secret}", "--gateway", f"{live.base}/threema", "--feed", sub.feed, "--rendition", sub.rendition,
         "--out", str(out), "--listen", f"127.0.0.1:{sub.port}", "--seconds", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        received = 0
        deadline = time.monotonic() + 120
        while received < 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            received += line.startswith("received ")
        assert received == 4
        # Frozen mid-run (SIGSTOP stops it between writes): what is on disk already plays.
        proc.send_signal(signal.SIGSTOP)
        try:
            snapshot = tmp_path / "while-running.mp4"
            snapshot.write_bytes(out.read_bytes())
        finally:
            proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stdout + stderr
    wrote = re.search(r"wrote .*: (\d+) segments \(seq (\d+)\.\.(\d+)\), ([\d.]+) s", stdout)
    assert wrote, stdout
    count, first, last = int(wrote.group(1)), int(wrote.group(2)), int(wrote.group(3))
    assert count >= 4 and "gap:" not in stdout and last - first + 1 == count

    init = live.get(f"/live/{sub.feed}/{sub.rendition}/init.mp4").content
    # What was received is what the packager made: same seqs, same bytes, same durations.
    matched = _segments_in(out.read_bytes(), init, _versions(live, sub.feed, sub.rendition), first, last)
    probe = _decodes(out)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (426, 240)
    expected = sum(v["duration"] for v in matched)
    # The pictures span exactly the segments' durations. Not the file's extent: on a busy
    # machine a segment's audio may run up to MAX_AUDIO_LAG behind its pictures, so the first
    # segment can hold sound from before its first picture. (ffprobe's duration of an MP4
    # stream is its end time; the feed's timeline starts at the wall clock.)
    played = float(video["duration"]) - float(video["start_time"])
    assert abs(played - expected) < 0.1, (played, expected, probe)

    # The mid-run copy is a playable prefix of the same file: whole segments, from the first.
    early = snapshot.read_bytes()
    assert len(early) > len(init) and out.read_bytes().startswith(early)
    _decodes(snapshot)


def test_official_sdk_receives_and_opens_our_file_messages(live, subscribers):
    sub = subscribers["*SDKRECV"]
    live.wait_media(sub.feed, 8)
    got: list = []
    enough = threading.Event()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start():
        conn = Connection(sub.identity, sub.secret, key=sub.keys.private_string)
        conn.urls = {k: v.replace(THREEMA, f"{live.base}/threema") for k, v in Connection.urls.items()}
        app = e2e.create_application(conn)

        async def handler(message) -> None:
            got.append(message)
            if len([m for m in got if m.type == e2e.Message.Type.file_message]) >= 3:
                enough.set()

        e2e.add_callback_route(conn, app, handler, path="/callback")
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", sub.port).start()
        return runner, conn

    runner, conn = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        assert enough.wait(120), f"the SDK got {len(got)} messages"
        files = [m for m in got if m.type == e2e.Message.Type.file_message]
        # every version the packager catalogued (a segment made again has a row per version)
        digests = {v["digest"] for versions in _versions(live, sub.feed, sub.rendition).values() for v in versions}
        init = live.get(f"/live/{sub.feed}/{sub.rendition}/init.mp4").content
        # The first message is the init segment; then media segments the catalog lists.
        assert files[0].file_content == init
        for m in files[1:]:
            assert hashlib.sha256(m.file_content).hexdigest() in digests
            assert m.mime_type == "video/mp4" and all(f.from_id == "*ORBCAST" for f in files)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        asyncio.run_coroutine_threadsafe(conn.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_segments_at_rest_are_ciphertext_only(live):
    live.wait_media("synth", 6)
    # What a viewer gets in plaintext, to look for in the store: the head of each init segment,
    # the head and middle of media segments. Short box names alone ("moof") turn up by chance in
    # megabytes of ciphertext; 64 bytes of a real segment, or a fragment header, do not.
    plaintext = [b"ftypiso", b"\x00\x00\x00\x10mfhd\x00\x00\x00\x00"]
    for rung in (r.name for r in live.config.ladder.rungs):
        plaintext.append(live.get(f"/live/synth/{rung}/init.mp4").content[:64])
        playlist = m3u8.loads(live.get(f"/live/synth/{rung}/index.m3u8").text)
        # (m3u8 lists the segment still being cut as one without a URI, holding its parts;
        # a gap has nothing to fetch)
        for uri in [s.uri for s in playlist.segments if s.uri and not s.gap_tag][-3:]:
            data = live.get(f"/live/synth/{rung}/{uri}").content
            assert data[4:8] in (b"styp", b"moof"), uri
            plaintext += [data[:64], data[len(data) // 2:len(data) // 2 + 64]]
    store = Path(live.config.store)
    blobs = [p for p in (store / "threema-blobs").rglob("*") if p.is_file()]
    assert blobs, "the gateway keeps blobs in the store"
    for path in store.rglob("*"):
        if not path.is_file() or path.suffix == ".parquet" or path.name.endswith(".log"):
            continue
        data = path.read_bytes()
        assert not any(p in data for p in plaintext), path


def test_edge_refuses_a_forged_callback(live, subscribers):
    sub = subscribers["*SUBSCR1"]
    intruder = generate_key_pair()
    edge_key = requests.get(f"{live.base}/threema/pubkeys/*ORBEDGE", params={"from": sub.identity, "secret": sub.secret}, timeout=10)
    assert edge_key.status_code == 200
    edge_public = public_key_from_hex(edge_key.text)
    envelope = SegmentSealer(intruder).seal_text("*ORBEDGE", edge_public, "let me in")
    fields = build_callback_fields("not-the-edge-secret", from_id="*ORBCAST", to_id="*ORBEDGE", message_id="00" * 8,
                                   date=1700000000, nonce_hex=envelope.nonce_hex, box_hex=envelope.box_hex)
    r = requests.post(f"{live.base}/edge/callback", data=encode_callback(fields),
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert r.status_code == 400 and r.content == b""
    stats = ray.get(live.pipeline.edge.stats.remote())
    assert stats["receiver"].get("bad_callback_mac", 0) >= 1


@pytest.mark.parametrize("path,params,status", [
    ("/credits", {"from": "*ORBCAST", "secret": "wrong"}, 401),
    ("/pubkeys/*NOSUCH1", None, 404),
    ("/blobs/" + "0" * 32, None, 404),
])
def test_gateway_on_serve_answers_as_threema_does(live, subscribers, path, params, status):
    sub = subscribers["*SUBSCR1"]
    r = requests.get(f"{live.base}/threema{path}", params=params or {"from": sub.identity, "secret": sub.secret}, timeout=10)
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text and len(r.text) < 200


def test_edge_delivery_receipts_reach_the_sender(live):
    live.wait_media("synth", 6)
    sent: dict[str, str] = {}  # message id -> recipient, from every feed's packager (and standby)
    for packager in (p for feed in live.pipeline.packagers for p in live.pipeline.packagers_of(feed)):
        sent.update({message_id: to for _, _, to, message_id in ray.get(packager.stats.remote())["sent"]})
    to_edge = [message_id for message_id, to in sent.items() if to == "*ORBEDGE"]
    assert len(to_edge) >= 20
    # The edge confirms what it took, in receipts it batches every half second: every message
    # sent to it before this snapshot is confirmed within a few seconds, by the edge.
    receipts: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(m in receipts for m in to_edge):
        time.sleep(0.5)
        receipts = ray.get(live.pipeline.inbox.receipts.remote())
    missing = [m for m in to_edge if m not in receipts]
    assert not missing, f"{len(missing)} of {len(to_edge)} messages to the edge never confirmed"
    assert all(receipts[m] == "*ORBEDGE" for m in to_edge)
    # and nothing the edge was not sent is confirmed as if it had been
    assert not any(m in receipts for m, to in sent.items() if to != "*ORBEDGE")
