"""orbitcast's additions to the HAProxy configuration Ray Serve writes, checked by the HAProxy
that Ray bundles (`haproxy -c`), and the wrapper Serve runs as its HAProxy."""

from __future__ import annotations

import os
import time
import subprocess
from pathlib import Path

import pytest

from orbitcast.delivery.haproxy_front import CACHE_NAME, FrontConfigError, front_config
from pipelines.haproxy_front import config_paths, real_haproxy

SAMPLE = Path(__file__).parent / "data" / "serve-haproxy.cfg"


def serve_config(tmp_path: Path, host: str = "127.0.0.1") -> str:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "500.http").write_text("HTTP/1.0 500 Internal Server Error\r\n\r\n")
    text = SAMPLE.read_text()
    text = text.replace("{STATE}", str(state)).replace("{PORT}", "28030").replace("{METRICS}", "28401")
    text = text.replace("{STATS}", "28404").replace("bind 127.0.0.1:28030", f"bind {host}:28030")
    return text


def haproxy_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return subprocess.run([real_haproxy(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)


def test_serves_config_is_valid_as_written(tmp_path: Path) -> None:
    # the fixture itself is what HAProxy accepts: otherwise the next test proves nothing
    checked = haproxy_check(tmp_path, serve_config(tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_cache_and_loopback_binds_make_a_valid_config(tmp_path: Path) -> None:
    original = serve_config(tmp_path)
    text = front_config(original)
    checked = haproxy_check(tmp_path, text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"cache {CACHE_NAME}" in text
    frontend = text[text.index("frontend http_frontend"):text.index("backend default_backend")]
    # the cache is consulted before any request is routed to a replica
    assert frontend.index(f"cache-use {CACHE_NAME}") < frontend.index("use_backend")
    assert f"cache-store {CACHE_NAME}" in frontend
    assert "tune.bufsize 262144" in text and "tune.bufsize 16384" not in text
    # a dead replica's connect is given up soon; a request queued waits as long as Serve said
    assert "timeout connect 100ms" in text and "timeout connect 5s" not in text and "timeout queue 5s" in text
    binds = [line.split()[1] for line in text.splitlines() if line.strip().startswith("bind ")]
    assert binds and all(b.startswith("127.0.0.1:") for b in binds), binds
    assert front_config(text) == text  # once only, however often Serve reloads


def test_a_public_viewer_port_leaves_the_other_binds_alone(tmp_path: Path) -> None:
    text = front_config(serve_config(tmp_path, host="0.0.0.0"))
    assert "bind *:28404" in text and "bind :28401" in text
    assert haproxy_check(tmp_path, text).returncode == 0


def test_an_unknown_config_is_refused_not_mangled() -> None:
    with pytest.raises(FrontConfigError):
        front_config("global\n    maxconn 10\ndefaults\n    mode http\n")


def test_the_wrapper_rewrites_the_file_it_is_given_and_runs_the_real_haproxy(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(serve_config(tmp_path))
    assert config_paths(["-f", str(cfg), "-c"]) == [cfg]
    wrapper = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[2] / ".venv")) / "bin" / "orbitcast-haproxy"
    if not wrapper.exists():
        pytest.skip("orbitcast-haproxy is installed by `pip install -e .`")
    done = subprocess.run([str(wrapper), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"cache {CACHE_NAME}" in cfg.read_text()


def test_the_config_before_any_app_is_deployed_gets_the_cache_too(tmp_path: Path) -> None:
    # Serve starts HAProxy before the apps exist: its frontend then only has a default_backend
    empty = "\n".join(line for line in serve_config(tmp_path).splitlines() if "use_backend" not in line) + "\n"
    text = front_config(empty)
    assert f"cache-use {CACHE_NAME}" in text
    checked = haproxy_check(tmp_path, text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_haproxy_ends_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    import signal
    import socket
    import sys

    wrapper = Path(sys.executable).parent / "orbitcast-haproxy"
    if not wrapper.exists():
        pytest.skip("orbitcast-haproxy is installed by `pip install -e .`")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(serve_config(tmp_path).replace("28030", str(port)))
    # a stand-in for Serve's HAProxy manager: starts it, prints its pid, then is SIGKILLed
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time; p = subprocess.Popen(sys.argv[1:]); print(p.pid, flush=True); time.sleep(60)",
         str(wrapper), "-db", "-f", str(cfg)],
        stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 10
    while not _listening(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _listening(port), "haproxy did not start"
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while (_alive(child) or _listening(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "haproxy outlived the process that started it"
    assert not _listening(port), "the viewer port is still held"


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


class _Replica:
    """A raw HTTP server on loopback: answers each request with its name, or, `dying`, reads
    the request and resets the connection without a word (a replica SIGKILLed while it held
    it). Counts what it was sent, by method."""

    def __init__(self, name: str, dying: bool) -> None:
        import socket
        import threading
        from collections import Counter

        self.name, self.dying = name, dying
        self.got: Counter[str] = Counter()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import socket
        import struct
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn, socket, struct), daemon=True).start()

    def _one(self, conn, socket, struct) -> None:  # type: ignore[no-untyped-def]
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            self.got[head.split(b" ")[0].decode()] += 1
            if self.dying:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
                return
            reply = self.name.encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply))


def _front_before(tmp_path: Path, backend: str) -> tuple[subprocess.Popen, str]:
    """Ray's HAProxy on orbitcast's configuration, the main app's backend replaced by
    `backend` (its lines after the section name), listening on free ports: (process, base URL)."""
    import socket

    ports = []
    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    text = front_config(serve_config(tmp_path))
    text = text.replace("28030", str(ports[0])).replace("28401", str(ports[1])).replace("28404", str(ports[2]))
    main = text.index("\nbackend http-main") + 1
    end = text.index("\nlisten stats") + 1
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text[:main] + "backend http-main\n" + backend + text[end:])
    proc = subprocess.Popen([real_haproxy(), "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not _listening(ports[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{ports[0]}"


def test_a_get_whose_replica_dies_with_it_is_answered_by_another_and_a_post_is_not_sent_twice(tmp_path: Path) -> None:
    import requests

    dying, alive = _Replica("dying", dying=True), _Replica("alive", dying=False)
    proc, base = _front_before(tmp_path, "    balance roundrobin\n"
                               f"    server dying 127.0.0.1:{dying.port}\n    server alive 127.0.0.1:{alive.port}\n")
    try:
        for i in range(4):  # round robin: two of them were sent to the dying replica first
            r = requests.get(f"{base}/live/iss/360p/index.m3u8?n={i}", timeout=10)
            assert (r.status_code, r.text) == (200, "alive"), (i, r.status_code, r.text)
        assert dying.got["GET"] >= 1 and alive.got["GET"] == 4
        posts = [requests.post(f"{base}/threema-like/{i}", data=b"x" * 10, timeout=10) for i in range(4)]
        assert dying.got["POST"] >= 1
        assert alive.got["POST"] + dying.got["POST"] == 4  # each sent once
        assert sum(r.status_code == 200 for r in posts) == alive.got["POST"]
    finally:
        proc.terminate()
        proc.wait(10)
        dying.sock.close()
        alive.sock.close()


def test_a_request_that_finds_its_replica_gone_does_not_wait_out_haproxys_second(tmp_path: Path) -> None:
    # Serve's servers are marked down on a connect error (`on-error mark-down`); with one server
    # left, HAProxy waits min(timeout connect, 1 s) before it tries again: a viewer's blocking
    # reload stood still for a second at every Delivery replica's death.
    import socket

    import requests

    leaving, staying = _Replica("leaving", dying=False), _Replica("staying", dying=False)
    options = "check observe layer4 error-limit 3 on-error mark-down"  # as Serve writes them
    proc, base = _front_before(tmp_path, f"    server leaving 127.0.0.1:{leaving.port} {options}\n"
                                         f"    server staying 127.0.0.1:{staying.port} {options}\n")
    try:
        url = f"{base}/live/iss/360p/index.m3u8"
        for _ in range(4):
            assert requests.get(url, timeout=10).status_code == 200
        assert leaving.got["GET"] >= 1  # both replicas took viewers
        leaving.sock.shutdown(socket.SHUT_RDWR)  # the replica killed: its port refuses connections
        leaving.sock.close()
        took = []
        for i in range(10):
            t0 = time.monotonic()
            r = requests.get(f"{url}?n={i}", timeout=10)
            took.append(time.monotonic() - t0)
            assert (r.status_code, r.text) == (200, "staying"), (i, r.status_code, r.text)
        assert max(took) < 0.9, [round(t, 3) for t in took]  # HAProxy's turn-around is 1 s
    finally:
        proc.terminate()
        proc.wait(10)
        staying.sock.close()
