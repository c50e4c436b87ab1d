"""`orbitcast export` and `orbitcast verify --recording CLIP` as a user runs them, against a real
HTTP server on 127.0.0.1 that serves the feed of `clip_fixtures` (playlists, media, ledger)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orbitcast.delivery.playlists import iso_ms
from orbitcast.media.fmp4 import iter_boxes
from pipelines.cli import main

from tests.unit.clip_fixtures import KEY, ClipEdge, at


@pytest.fixture
def origin() -> Iterator[str]:
    edge = ClipEdge()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            try:
                status, body = 200, edge.fetch(self.path)
            except IOError as e:
                status, body = getattr(e, "status", 404), str(e).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_export_then_verify_and_a_changed_byte_fails(origin: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    edge = ClipEdge()  # the same feed the server serves (made once, deterministic)
    out = tmp_path / "clip.mp4"
    code, _, err = cli(capsys, "export", "iss", "--from", iso_ms(at(1, 0.5, edge)), "--to", iso_ms(at(4, 0.2, edge)),
                       "-o", str(out), "--url", origin)
    assert code == 0, err
    assert f"wrote {out}: iss/hi seqs 1-4" in err and "orbitcast verify --recording" in err
    pubkey = bytes(KEY.verify_key).hex()
    code, stdout, err = cli(capsys, "verify", "--recording", str(out), "--ledger", f"{origin}/ledger/iss", "--pubkey", pubkey)
    assert code == 0, stdout + err
    assert "proven:" in stdout and re.search(r"^clip samples +ok$", stdout, re.M)
    data = out.read_bytes()
    _, start, end = next(b for b in iter_boxes(data) if b[0] == b"mdat")
    bad = bytearray(data)
    bad[(start + end) // 2] ^= 0x40
    (tmp_path / "bad.mp4").write_bytes(bytes(bad))
    code, stdout, err = cli(capsys, "verify", "--recording", str(tmp_path / "bad.mp4"), "--ledger",
                            f"{origin}/ledger/iss", "--pubkey", pubkey)
    assert code == 1
    assert "FAILED clip samples:" in err and "differs from the certified sample in iss/hi/" in err


@pytest.mark.parametrize("span, message", [
    (("2001-01-01T00:00:00Z", "2001-01-01T00:00:04Z"), "no media in that range"),
    (("1700000010", "1700000005"), "--to must be after --from"),
    (("next week", "1700000005"), "--from: expected ISO 8601"),
])
def test_bad_ranges_exit_2_with_one_line(origin: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         span: tuple[str, str], message: str) -> None:
    code, _, err = cli(capsys, "export", "iss", "--from", span[0], "--to", span[1], "-o", str(tmp_path / "c.mp4"),
                       "--url", origin)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c.mp4").exists()
