"""Ingest-to-part latency per contribution protocol: from the moment a sender hands a picture to
its muxer to the moment the transcoder cuts the LL-HLS part that holds it.

The sender is this process: PyAV encodes a moving 640x360 picture at 30 fps, its number written
in blocks along its top edge, and a tone (H.264 `zerolatency`, 1 s GOP, and AAC), in real time,
and muxes each packet as soon as it is encoded, noting when each picture went: straight to UDP
and TCP as MPEG-TS; for SRT (which PyAV's FFmpeg lacks) and RTMP (PyAV's own RTMP client stalls
against FFmpeg's listener) as MPEG-TS into Debian's ffmpeg, which copies it to the protocol, as
an encoder box might. The sender is as tight as FFmpeg allows (audio frames not gathered into
larger PES packets, streams not held for interleaving); FFmpeg's muxer still holds a picture
until the next one comes (33 ms), part of every figure here.

The receiver is what a feed runs: `FeedRunner` with the demo configuration's part duration and
batching, handing its batches to a `LiveTranscoder` with the demo ladder, in this process (a
feed actor and a transcoder add one Ray call per batch; the hop from the cut to a Delivery
replica's listing is measured apart, by bench_delivery: the part hop). The transcoder's frame
tap reads each picture's number back, so a part's last picture is known however many were lost
on the way; beside the whole figure, the medians to the batch's arrival at the transcoder and
to the picture's decoding tell where the time goes.

    .venv/bin/python -m bench.bench_ingest --seconds 20
"""

from __future__ import annotations

import argparse
import bisect
import json
import shutil
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from orbitcast.config import FeedConfig, OrbitcastConfig
from orbitcast.media.feed_runner import FeedRunner, batch_seconds_for
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.media.units import FeedStreams, MediaUnit
from orbitcast.netstat import bound
from orbitcast.segment import Part

FPS = 30
WIDTH, HEIGHT = 640, 360
RATE = 48000
PROTOCOLS = ("udp", "tcp", "rtmp", "srt")
# A sender that sends each audio frame at once (FFmpeg's MPEG-TS muxer otherwise gathers audio
# into PES packets of about 2,930 bytes: a quarter second at 96 kb/s, which pictures then wait for).
TIGHT_TS = {"pes_payload_size": "0"}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Route:
    """How a protocol is received (the feed's source) and sent to (PyAV's output, or ffmpeg's)."""

    source: str
    options: dict[str, str]
    send_url: str
    bound_as: str  # "tcp" or "udp": what the receiver's port looks like while it waits
    port: int
    relay: list[str] | None = None  # a sending ffmpeg fed MPEG-TS on stdin, for what PyAV cannot send


def route(protocol: str) -> Route:
    if protocol == "udp":
        port = free_port(socket.SOCK_DGRAM)
        return Route(f"udp://127.0.0.1:{port}", {}, f"udp://127.0.0.1:{port}?pkt_size=1316", "udp", port)
    if protocol == "tcp":
        port = free_port()
        return Route(f"tcp://127.0.0.1:{port}?listen=1", {}, f"tcp://127.0.0.1:{port}", "tcp", port)
    if protocol == "rtmp":
        port = free_port()
        url = f"rtmp://127.0.0.1:{port}/live/bench"
        return Route(url, {"listen": "1"}, "pipe:", "tcp", port, relay_to(url, "flv"))
    if protocol == "srt":
        port = free_port(socket.SOCK_DGRAM)
        return Route(f"srt://127.0.0.1:{port}?mode=listener", {}, "pipe:", "udp", port,
                     relay_to(f"srt://127.0.0.1:{port}?mode=caller", "mpegts"))
    raise ValueError(protocol)


def relay_to(url: str, fmt: str) -> list[str]:
    """Debian's ffmpeg copying what it reads on stdin to `url`: the sending end of SRT (which
    PyAV's FFmpeg lacks) and of RTMP (PyAV's own RTMP client stalls against FFmpeg's listener)."""
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-fflags", "nobuffer",
            "-probesize", "32768", "-analyzeduration", "200000", "-f", "mpegts", "-i", "pipe:0",
            "-c", "copy", "-max_interleave_delta", "1", "-f", fmt, "-flush_packets", "1",
            *(["-pes_payload_size", TIGHT_TS["pes_payload_size"]] if fmt == "mpegts" else []), url]


BITS, BLOCK = 12, 24  # the picture's number, in blocks along its top edge (136 s at 30 fps)


def bars() -> list[np.ndarray]:
    """A second of moving bars (luma planes): what the encoder sees matters to its speed."""
    x = np.arange(WIDTH, dtype=np.uint16)
    return [np.tile(((x + k * 11) % 200 + 28).astype(np.uint8), (HEIGHT, 1)) for k in range(FPS)]


def picture(k: int, luma: np.ndarray) -> av.VideoFrame:
    """Picture number `k`, its number written in black and white blocks the decoder reads back."""
    y = luma.copy()
    for bit in range(BITS):
        y[:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 235 if k >> bit & 1 else 16
    chroma = np.full((HEIGHT // 2, WIDTH), 128, np.uint8)  # U then V, each (H/2, W/2)
    frame = av.VideoFrame.from_ndarray(np.vstack([y, chroma]), format="yuv420p")
    frame.pts = k
    return frame


def number_of(frame: av.VideoFrame) -> int:
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    scale = frame.width / WIDTH  # the receiver sees the sent size; the check costs nothing if not
    row = int(BLOCK / 2 * scale)
    return sum(1 << bit for bit in range(BITS) if y[row, int((bit + 0.5) * BLOCK * scale)] > 128)


def send(r: Route, seconds: float, sent: dict[int, float]) -> None:
    """Encode and write `seconds` of picture and tone at real time; `sent[k]`: when picture k's
    packet had been written to the transport."""
    proc = None
    if r.relay is not None:
        proc = subprocess.Popen(r.relay, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                bufsize=0)
        target: object = proc.stdin
    else:
        target = r.send_url
    # the sender writes MPEG-TS, to the protocol or to a relay
    out = av.open(target, "w", format="mpegts",
                  container_options={"flush_packets": "1", "max_interleave_delta": "1", **TIGHT_TS})
    try:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        v.bit_rate = 1_500_000
        v.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(FPS), "keyint_min": str(FPS)}
        a = out.add_stream("aac", rate=RATE)
        a.layout, a.bit_rate = "stereo", 96_000
        lumas = bars()
        tone = np.sin(2 * np.pi * 440 * np.arange(1024 * 512) / RATE).astype(np.float32) * 0.3
        audio_pts = 0
        start = time.perf_counter()
        for k in range(round(seconds * FPS)):
            delay = start + k / FPS - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for pkt in v.encode(picture(k, lumas[k % FPS])):
                number = int(pkt.pts)  # before mux, which rescales it to the container's time base
                out.mux(pkt)
                sent[number] = time.time()
            while audio_pts < (k + 1) * RATE // FPS:  # the tone up to this picture's end
                samples = tone[audio_pts % (len(tone) - 1024):][:1024]
                af = av.AudioFrame.from_ndarray(np.stack([samples, samples]), format="fltp", layout="stereo")
                af.sample_rate, af.pts, af.time_base = RATE, audio_pts, Fraction(1, RATE)
                audio_pts += 1024
                for pkt in a.encode(af):
                    out.mux(pkt)
        for stream in (v, a):
            for pkt in stream.encode(None):
                out.mux(pkt)
    finally:
        out.close()
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)


@dataclass
class Received:
    parts: list[Part] = field(default_factory=list)
    numbers: dict[int, int] = field(default_factory=dict)  # media time (ms) -> the picture's number
    decoded: dict[int, float] = field(default_factory=dict)  # picture number -> when it was decoded
    arrived: dict[int, float] = field(default_factory=dict)  # media time (ms) -> when its batch came
    sessions: int = 0

    def tap(self, frame: av.VideoFrame, media_time: float, capture_time: float) -> None:
        number = number_of(frame)
        self.numbers[round(media_time * 1000)] = number
        self.decoded[number] = time.time()


def receive(r: Route, cfg: OrbitcastConfig, got: Received) -> FeedRunner:
    transcoder: list[LiveTranscoder] = []
    generation = [0]

    def sink(streams: FeedStreams, units: list[MediaUnit]) -> None:
        if not transcoder:
            transcoder.append(LiveTranscoder("bench", cfg.ladder, cfg.segment_duration, cfg.part_duration, streams,
                                             frame_tap=got.tap))
        elif streams.generation != generation[0]:
            transcoder[0].change_input(streams)
        if streams.generation != generation[0]:
            generation[0] = streams.generation
            got.sessions += 1
        now = time.time()
        got.arrived.update((round(u.time * 1000), now) for u in units if u.kind == "video")
        got.parts += [x for x in transcoder[0].push(units) if isinstance(x, Part)]

    feed = FeedConfig(name="bench", source=r.source, options=r.options, slate_after=None)
    runner = FeedRunner(feed, sink, batch_seconds=batch_seconds_for(cfg.part_duration), open_timeout=30)
    threading.Thread(target=runner.run, name="bench-feed", daemon=True).start()
    return runner


def run(protocol: str, seconds: float, config: OrbitcastConfig) -> dict:
    r = route(protocol)
    got = Received()
    runner = receive(r, config, got)
    deadline = time.monotonic() + 30
    while not bound(r.port, r.bound_as):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{protocol}: the receiver never bound port {r.port}")
        time.sleep(0.02)
    sent: dict[int, float] = {}
    send(r, seconds, sent)
    time.sleep(2.0)  # the last parts on their way
    runner.stop()
    rung = config.ladder.rungs[0].name
    if got.sessions != 1:
        return {"protocol": protocol, "error": f"{got.sessions} sessions"}
    lats, inbound, came = [], [], []
    times = sorted(got.numbers)
    for p in got.parts:
        if p.rendition != rung:
            continue
        end = round((p.start + p.duration) * 1000)
        i = bisect.bisect_left(times, end - 2) - 1  # its last picture: the one just before its end
        if i >= 0 and (number := got.numbers[times[i]]) in sent:
            lats.append(p.made_at - sent[number])
            inbound.append(got.decoded[number] - sent[number])
            came.append(got.arrived[times[i]] - sent[number])
    numbers = sorted(got.numbers.values())
    lats.sort()
    if not lats:
        return {"protocol": protocol, "error": "no part"}
    q = statistics.quantiles(lats, n=100, method="inclusive") if len(lats) > 1 else lats * 99
    return {"protocol": protocol, "pictures": f"{len(numbers)} of {len(sent)} ({numbers[0]}-{numbers[-1]})",
            "parts": len(lats), "p50_ms": round(q[49] * 1000, 1),
            "p95_ms": round(q[94] * 1000, 1), "max_ms": round(lats[-1] * 1000, 1),
            "min_ms": round(lats[0] * 1000, 1),
            # to arrived: the transport, the demuxer and the feed's batching; to decoded: the decoder
            # too; the rest is the ladder's encoders and the muxer's cut
            "arrived_p50_ms": round(statistics.median(came) * 1000, 1),
            "decoded_p50_ms": round(statistics.median(inbound) * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="media sent per protocol")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated: " + ", ".join(PROTOCOLS))
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("needs Debian's ffmpeg (make bench installs it): the SRT sender and our SRT listener use it")
    config = OrbitcastConfig()  # the defaults: the demo ladder, segment and part durations
    print(f"ladder {[r.name for r in config.ladder.rungs]}, part {config.part_duration} s, "
          f"batch {batch_seconds_for(config.part_duration)} s, {args.seconds:g} s per protocol")
    for protocol in args.protocols.split(","):
        print(json.dumps(run(protocol.strip(), args.seconds, config)), flush=True)


if __name__ == "__main__":
    main()
