"""`orbitcast verify` as a viewer runs it, over real HTTP against the live pipeline.

The edge serves segments from memory, so tampering is done where a viewer would meet it: in a
recording file on disk, and in a proxy between the viewer and the server (a cache or CDN that
changes one byte, or serves forged tree heads).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import m3u8
import pytest
from nacl.signing import SigningKey

from orbitcast.ledger import MerkleTree, SignedTreeHead, leaf_hash
from orbitcast.ledger.http_shapes import pubkey_json
from orbitcast.ledger.leaf import decode_leaf
from orbitcast.ledger.service import KEY_NAME
from orbitcast.media.fmp4 import iter_boxes

from tests.hls import whole_segments

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^(\S+)\s+(ok|FAIL: .*)$")


@pytest.fixture(autouse=True)
def no_pinned_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts with no ledger key pinned: the CLI's default known-ledgers file is under
    XDG_CONFIG_HOME, which the CLI's process inherits. Returns that file."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "orbitcast" / "known_ledgers"


def run_verify(*args: str) -> tuple[int, dict[str, str], str]:
    """Run the real CLI; return (exit status, {segment: result}, whole output)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "verify", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    rows = {}
    for line in proc.stdout.splitlines()[1:]:
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = m.group(2)
    return proc.returncode, rows, proc.stdout + proc.stderr


def failures(rows: dict[str, str]) -> set[str]:
    return {seg for seg, result in rows.items() if result != "ok"}


def flip_in_mdat(segment: bytes) -> int:
    """An offset in the middle of the segment's largest mdat payload: changing it keeps every
    box boundary, so the damage is one changed byte of media, nothing else."""
    off, end = max(((s, e) for kind, s, e in iter_boxes(segment) if kind == b"mdat"), key=lambda b: b[1] - b[0])
    return off + 8 + (end - off - 8) // 2


# -- a tampering proxy ---------------------------------------------------------------------------


class TamperProxy:
    """A real HTTP server on 127.0.0.1 that forwards GETs to the pipeline, and can flip one
    byte of one chosen path, replace the feed's signed tree head with a forged one, or answer
    /ledger/pubkey with another key."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.flip_path: str | None = None
        self.forge_sth: str | None = None  # "bad_signature" | "shrunk" | "inconsistent"
        self.signing_key: SigningKey | None = None
        self.forge_pubkey: SigningKey | None = None
        self.tampered: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, headers, body = proxy.answer(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "TamperProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fetch(self, path: str) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(self.upstream + path, timeout=15) as r:
                return r.status, {"Content-Type": r.headers.get("Content-Type", "")}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {"Content-Type": e.headers.get("Content-Type", "")}, e.read()

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = self.fetch(path)
        if status == 200 and path == self.flip_path:
            data = bytearray(body)
            data[flip_in_mdat(body)] ^= 0x01
            body = bytes(data)
            self.tampered.append(path)
        if status == 200 and self.forge_pubkey and path == "/ledger/pubkey":
            body = json.dumps(pubkey_json(self.forge_pubkey.verify_key)).encode()
            self.tampered.append(path)
        if status == 200 and self.forge_sth and path.split("?")[0].endswith("/sth"):
            body = json.dumps(self.forged(SignedTreeHead.from_json(json.loads(body)))).encode()
            self.tampered.append(path)
        return status, headers, body

    def forged(self, real: SignedTreeHead) -> dict:
        if self.forge_sth == "bad_signature":
            sig = bytearray(real.signature)
            sig[0] ^= 0x01
            return {**real.to_json(), "signature": bytes(sig).hex()}
        assert self.signing_key is not None
        # Stamped well after any head the real log signs during the run, so the verifier
        # orders it after them.
        later = real.timestamp_ms + 600_000
        if self.forge_sth == "shrunk":
            # A correctly rooted head of the first entry alone, signed later than the real
            # head: the log claims to have lost every entry but one.
            _, _, entries = self.fetch(f"/ledger/{real.feed}/entries?start=0&end=1")
            first = bytes.fromhex(json.loads(entries)["entries"][0])
            root = MerkleTree.from_leaf_hashes([leaf_hash(first)]).root()
            return SignedTreeHead.sign(self.signing_key, real.feed, 1, later, root).to_json()
        # "inconsistent": the real size, another root: a forked or rewritten log.
        root = bytes(b ^ 0xFF for b in real.root_hash)
        return SignedTreeHead.sign(self.signing_key, real.feed, real.tree_size, later, root).to_json()


# -- tests ---------------------------------------------------------------------------------------


def listed(live, feed: str, rendition: str) -> list[int]:
    pl = m3u8.loads(live.get(f"/live/{feed}/{rendition}/index.m3u8").text)
    return [int(s.uri.split(".")[0]) for s in whole_segments(pl)]


def test_verify_passes_on_the_live_stream(live):
    live.wait_media("synth", 12)
    pubkey = live.get("/ledger/pubkey").json()["public_key"]
    # The key the server publishes is the one the log holds on disk.
    on_disk = (Path(live.config.store) / "ledger" / KEY_NAME).read_text().strip()
    assert bytes(SigningKey(bytes.fromhex(on_disk)).verify_key).hex() == pubkey
    before = {r.name: listed(live, "synth", r.name) for r in live.config.ladder.rungs}
    started = time.perf_counter()
    code, rows, out = run_verify(f"{live.base}/live/synth/master.m3u8", "--pubkey", pubkey)
    elapsed = time.perf_counter() - started
    after = {r.name: listed(live, "synth", r.name) for r in live.config.ladder.rungs}
    assert code == 0, out
    assert rows and failures(rows) == set(), out
    # Every segment the playlists listed (between the two looks around the run) is a row.
    for rung in live.config.ladder.rungs:
        got = {int(s.rsplit("/", 1)[1]) for s in rows if s.startswith(f"synth/{rung.name}/")}
        assert set(before[rung.name]) & set(after[rung.name]) <= got <= set(before[rung.name]) | set(after[rung.name])
        assert len(got) >= live.config.live_window - 1
    assert f"{len(rows)}/{len(rows)} segments verified" in out
    print(f"verify of the live window ({len(rows)} segments): {elapsed:.2f} s")


def test_recording_verifies_then_names_the_one_flipped_segment(live, tmp_path):
    live.wait_media("synth", 12)
    seqs = listed(live, "synth", "360p")
    init = live.get("/live/synth/360p/init.mp4").content
    segments = {s: live.get(f"/live/synth/360p/{s}.m4s").content for s in seqs}
    assert all(len(d) > 1000 for d in segments.values())
    recording = tmp_path / "synth-360p.mp4"
    recording.write_bytes(init + b"".join(segments[s] for s in seqs))  # as `orbitcast receive` writes
    ledger_url = f"{live.base}/ledger/synth"

    code, rows, out = run_verify("--recording", str(recording), "--ledger", ledger_url)
    assert code == 0, out
    assert set(rows) == {f"synth/360p/{s}" for s in seqs} and failures(rows) == set(), out

    victim = seqs[len(seqs) // 2]
    data = bytearray(recording.read_bytes())
    offset = len(init) + sum(len(segments[s]) for s in seqs if s < victim) + flip_in_mdat(segments[victim])
    data[offset] ^= 0x80
    recording.write_bytes(bytes(data))
    code, rows, out = run_verify("--recording", str(recording), "--ledger", ledger_url)
    assert code == 1, out
    assert failures(rows) == {f"synth/360p/{victim}"}, out
    assert set(rows) == {f"synth/360p/{s}" for s in seqs}, out  # every other segment still ok
    assert f"FAILED synth/360p/{victim}" in out


def test_tampering_proxy_is_caught_naming_exactly_that_segment(live):
    live.wait_media("synth", 12)
    with TamperProxy(live.base) as proxy:
        seqs = listed(live, "synth", "240p")
        # The middle of the window stays listed for several segment durations: long enough
        # for the verify run that follows.
        victim = seqs[len(seqs) // 2]
        proxy.flip_path = f"/live/synth/240p/{victim}.m4s"
        code, rows, out = run_verify(f"{proxy.base}/live/synth/master.m3u8")
    assert proxy.tampered == [f"/live/synth/240p/{victim}.m4s"]  # it really met the change
    assert code == 1, out
    assert failures(rows) == {f"synth/240p/{victim}"}, out
    assert "bytes differ from the ledger" in rows[f"synth/240p/{victim}"]
    assert len(rows) >= 2 * (live.config.live_window - 1)


@pytest.mark.parametrize("forgery,reason", [
    ("bad_signature", "BadSignature"),
    ("shrunk", "LogShrank"),
    ("inconsistent", "InconsistentHeads"),
])
def test_forged_tree_heads_are_reported(live, forgery, reason):
    """A head not signed by the log's key; and, from someone holding the key (a misbehaving
    log), a later head that is smaller, or one whose tree does not extend the real one."""
    live.wait_media("synth", 8)
    key_hex = (Path(live.config.store) / "ledger" / KEY_NAME).read_text().strip()
    with TamperProxy(live.base) as proxy:
        proxy.forge_sth = forgery
        proxy.signing_key = SigningKey(bytes.fromhex(key_hex))
        code, rows, out = run_verify(f"{proxy.base}/live/synth/master.m3u8")
    assert proxy.tampered, "the proxy served no forged head"
    assert code == 1, out
    covered: set[str] = set()
    if forgery == "shrunk":
        # The forged head is a true head of the log's first entry alone: that one segment (the
        # feed's first, which the DVR window still lists) is in it. Every other must fail.
        first = bytes.fromhex(json.loads(live.get("/ledger/synth/entries?start=0&end=1").text)["entries"][0])
        leaf = decode_leaf(first)
        covered = {f"{leaf.feed}/{leaf.rendition}/{leaf.seq}"}
    assert rows and failures(rows) >= set(rows) - covered, out  # no other segment passes against a bad head
    assert failures(rows), out
    assert reason in out, out


def test_verify_pins_the_ledger_key_on_first_use_and_refuses_a_changed_one(live, no_pinned_keys):
    """As ssh does with host keys: the first run pins the key the server publishes; a server
    (or someone in between) that later answers with another key is refused before any check."""
    live.wait_media("synth", 8)
    real = live.get("/ledger/pubkey").json()["public_key"]
    with TamperProxy(live.base) as proxy:
        code, rows, out = run_verify(f"{proxy.base}/live/synth/master.m3u8")
        assert code == 0 and rows, out
        assert no_pinned_keys.read_text().splitlines()[-1] == f"{proxy.base} ed25519:{real}"
        pinned = no_pinned_keys.read_text()
        proxy.forge_pubkey = SigningKey.generate()
        code, rows, out = run_verify(f"{proxy.base}/live/synth/master.m3u8")
    assert proxy.tampered == ["/ledger/pubkey"]
    assert code == 1 and "HAS CHANGED" in out and real in out, out
    assert rows == {} and "segments verified" not in out, out
    assert no_pinned_keys.read_text() == pinned


def test_verify_reports_an_unreachable_or_unknown_stream(live):
    code, rows, out = run_verify(f"{live.base}/live/nosuchfeed/master.m3u8")
    assert code == 1 and "HTTP 404" in out and "Traceback" not in out
    code, _, out = run_verify("--recording", "/nonexistent.mp4", "--ledger", f"{live.base}/ledger/synth")
    assert code == 2 and "cannot read" in out and "Traceback" not in out
