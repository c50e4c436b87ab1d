"""Test media made on the fly with PyAV: no videos are committed."""

from __future__ import annotations

import math
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from orbitcast.netstat import bound


def make_clip(path: Path, seconds: float = 6.0, width: int = 640, height: int = 360, fps: int = 30,
              audio: bool = True, gop: int = 60) -> Path:
    """An H.264/AAC MP4 with a moving gradient and a tone, keyframes every `gop` frames."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "g": str(gop)}
        as_ = out.add_stream("aac", rate=48000) if audio else None
        if as_ is not None:
            as_.layout = "stereo"
        frames = int(seconds * fps)
        yy, xx = np.mgrid[0:height, 0:width]
        for i in range(frames):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[..., 0] = (xx + i * 4) % 256
            img[..., 1] = (yy + i * 2) % 256
            img[..., 2] = (i * 3) % 256
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if as_ is not None:
            samples = 1024
            n = int(seconds * 48000 / samples)
            for k in range(n):
                t = (np.arange(samples) + k * samples) / 48000
                tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                af.sample_rate = 48000
                af.pts = k * samples
                af.time_base = Fraction(1, 48000)
                out.mux(as_.encode(af))
            out.mux(as_.encode(None))
    return path


def make_corrupt(path: Path, size: int = 200_000) -> Path:
    rng = np.random.default_rng(7)
    path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def make_truncated(valid: Path, path: Path, keep: float = 0.4) -> Path:
    data = valid.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def send_test_stream(target: str, muxer: str, seconds: float, size: str = "640x360") -> subprocess.Popen:
    """Debian's ffmpeg as a contribution encoder: a moving test picture and a 660 Hz tone,
    H.264 and AAC, in real time, muxed as `muxer` to `target`."""
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=660:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", muxer, target],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def send_srt(port: int, seconds: float, passphrase: str, size: str = "640x360") -> subprocess.Popen:
    """An SRT caller (an encoder box) sending MPEG-TS encrypted with `passphrase`."""
    return send_test_stream(f"srt://127.0.0.1:{port}?mode=caller&passphrase={passphrase}&pbkeylen=16",
                            "mpegts", seconds, size)


RTP_PORTS = 8  # two streams (RTP and RTCP each) for a source, and as many again for a second one


def _free_udp_block(n: int) -> int:
    """The first of `n` consecutive UDP ports, all free now, in the tests' reserved range
    (conftest.reserved_port), starting on an even port as RTP wants."""
    rng = random.Random()
    for _ in range(200):
        start = rng.randrange(20000, 30000 - n) & ~1
        socks = []
        try:
            for port in range(start, start + n):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {n} free UDP ports in a row in 20000-29999")


@contextmanager
def rtsp_server_perl(log_path: Path) -> Iterator[tuple[int, int]]:
    """Debian's rtsp-server-perl on loopback: a sender ANNOUNCEs/RECORDs to the second port,
    players pull from the first. It relays RTP over UDP only (no interleaved TCP)."""
    from tests.conftest import reserved_port  # conftest imports this module

    exe = shutil.which("rtsp-server-perl")
    if exe is None:
        pytest.skip("needs Debian's rtsp-server-perl (make test installs it)")
    client_port, source_port, rtp_port = reserved_port(), reserved_port(), _free_udp_block(RTP_PORTS)
    with log_path.open("wb") as log:
        # Once its last source has left, the server takes RTP ports from its package default
        # (20000) again, not from --rtp_start_port (RTSP::Server::housekeeping): the next sender's
        # RECORD then failed where 20000 was taken, after its ANNOUNCE had made the mount, which
        # nothing removes, so every later ANNOUNCE got 403 Forbidden. The default is set too.
        server = subprocess.Popen(
            ["perl", "-MRTSP::Server", "-e", "$RTSP::Server::RTP_START_PORT = shift @ARGV; do shift @ARGV; die $@ if $@",
             str(rtp_port), exe,
             "--clientport", str(client_port), "--serverport", str(source_port), "--rtp_start_port", str(rtp_port),
             "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not (bound(client_port, "tcp") and bound(source_port, "tcp")):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(f"rtsp-server-perl did not listen: {log_path.read_text(errors='replace')}")
                time.sleep(0.05)
            yield client_port, source_port
        finally:
            server.kill()
            server.wait()
