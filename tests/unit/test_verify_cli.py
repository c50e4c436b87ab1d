"""`orbitcast verify` as a user runs it, against a real HTTP server on 127.0.0.1 that serves the
synthetic feed of `ledger_fixtures`: the server's ledger key is pinned on first use in a
known-ledgers file, and a changed key is refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from pipelines.cli import main

from tests.unit.ledger_fixtures import Edge


class Server:
    """Serves whichever `Edge` is current; swapping it is the server getting a new log key."""

    def __init__(self) -> None:
        self.edge = Edge()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                try:
                    status, body = 200, outer.edge.fetch(self.path)
                except IOError as e:
                    status, body = 404, str(e).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.master = f"{self.origin}/live/iss/master.m3u8"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def pinned_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]


def test_first_run_pins_the_servers_key_and_later_runs_check_against_it(server: Server, tmp_path: Path, capsys) -> None:
    known = tmp_path / "known_ledgers"
    key = bytes(server.edge.key.verify_key).hex()
    code, out, err = verify(capsys, server.master, "--known-ledgers", str(known))
    assert code == 0, out + err
    assert "18/18 segments verified" in out
    assert f"log key {key} (first use of this server: pinned in {known})" in out
    assert pinned_lines(known) == [f"{server.origin} ed25519:{key}"]

    code, out, err = verify(capsys, server.master, "--known-ledgers", str(known))
    assert code == 0, out + err
    assert f"log key {key} (pinned in {known})" in out
    assert pinned_lines(known) == [f"{server.origin} ed25519:{key}"]


def test_a_changed_server_key_is_refused_until_the_user_accepts_it(server: Server, tmp_path: Path, capsys) -> None:
    known = tmp_path / "known_ledgers"
    old = bytes(server.edge.key.verify_key).hex()
    assert verify(capsys, server.master, "--known-ledgers", str(known))[0] == 0
    server.edge = Edge(key=SigningKey.generate())  # the server now signs with another key
    new = bytes(server.edge.key.verify_key).hex()

    code, out, err = verify(capsys, server.master, "--known-ledgers", str(known))
    assert code == 1
    assert "HAS CHANGED" in err and server.origin in err and old in err and new in err
    assert f"delete line 2 of {known}" in err and f"--pubkey {new}" in err
    assert "segments verified" not in out and "Nothing was verified" in err
    assert pinned_lines(known) == [f"{server.origin} ed25519:{old}"]

    # --pubkey overrides the pin (and leaves the file alone).
    code, out, err = verify(capsys, server.master, "--known-ledgers", str(known), "--pubkey", new)
    assert code == 0, out + err
    assert f"log key {new} (given with --pubkey)" in out
    assert pinned_lines(known) == [f"{server.origin} ed25519:{old}"]

    # Deleting the line, as the warning says, pins the new key on the next run.
    known.write_text("\n".join(ln for ln in known.read_text().splitlines() if old not in ln) + "\n")
    code, out, err = verify(capsys, server.master, "--known-ledgers", str(known))
    assert code == 0, out + err
    assert pinned_lines(known) == [f"{server.origin} ed25519:{new}"]


def test_a_recording_check_pins_the_key_of_the_ledgers_server(server: Server, tmp_path: Path, capsys) -> None:
    known = tmp_path / "known_ledgers"
    recording = tmp_path / "iss-720p.mp4"
    recording.write_bytes(server.edge.recording("720p", range(6)))
    code, out, err = verify(capsys, "--recording", str(recording), "--ledger", f"{server.origin}/ledger/iss",
                            "--known-ledgers", str(known))
    assert code == 0, out + err
    assert pinned_lines(known) == [f"{server.origin} ed25519:{bytes(server.edge.key.verify_key).hex()}"]


def test_the_default_known_ledgers_file_is_in_the_xdg_config_home(server: Server, tmp_path: Path, capsys,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert verify(capsys, server.master)[0] == 0
    assert len(pinned_lines(tmp_path / "config" / "orbitcast" / "known_ledgers")) == 1


def test_a_corrupt_known_ledgers_file_is_a_clear_error(server: Server, tmp_path: Path, capsys) -> None:
    known = tmp_path / "known_ledgers"
    known.write_text(f"{server.origin} not-a-key\n")
    code, out, err = verify(capsys, server.master, "--known-ledgers", str(known))
    assert code == 2
    assert f"{known}:1:" in err and "ed25519:" in err and "Traceback" not in err + out


def test_an_unreachable_server_is_named_without_pinning_anything(tmp_path: Path, capsys) -> None:
    known = tmp_path / "known_ledgers"
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    code, out, err = verify(capsys, f"http://127.0.0.1:{port}/live/iss/master.m3u8", "--known-ledgers", str(known))
    assert code == 1 and "cannot read the ledger key" in err and "Traceback" not in err
    assert not known.exists()
