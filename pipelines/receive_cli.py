"""`orbitcast receive`: a Threema subscriber that writes what it receives as a playable fMP4.

It listens for the gateway's callbacks (its `callback_url` in the pipeline's config), opens
each file message with its own private key, fetches and opens the blob, checks the digest,
and appends the segments of one feed and rendition to the output file as they arrive: stopped
by Ctrl-C, SIGTERM or even SIGKILL, the file plays up to the last segment written.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from orbitcast.recording import Recording


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--identity", required=True, help="this subscriber's Threema identity, e.g. '*SUBSCR1'")
    p.add_argument("--key", required=True, help="its private key file (orbitcast keys new)")
    p.add_argument("--secret", required=True, help="its API secret at the gateway (keys the callback MAC)")
    p.add_argument("--gateway", required=True, help="gateway base URL, e.g. http://127.0.0.1:8000/threema")
    p.add_argument("--feed", required=True)
    p.add_argument("--rendition", required=True)
    p.add_argument("--out", required=True, help="output file (fragmented MP4), written as segments arrive")
    p.add_argument("--listen", default="127.0.0.1:9100", help="host:port for the gateway's callbacks (default %(default)s)")
    p.add_argument("--path", default="/callback", help="callback path (default %(default)s)")
    p.add_argument("--segments", type=int, default=0, help="stop after this many media segments (default: until Ctrl-C)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (default: until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from orbitcast.gateway.callback_app import build_callback_app
    from orbitcast.gateway.client import GatewayClient
    from orbitcast.sealing.errors import SealingError
    from orbitcast.sealing.keys import read_private_key_file
    from orbitcast.sealing.receiver import Received, Receiver

    try:
        keys = read_private_key_file(args.key)
    except (OSError, SealingError) as err:
        print(f"orbitcast receive: cannot read key {args.key}: {err}", file=sys.stderr)
        return 2
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print("orbitcast receive: --listen must be host:port", file=sys.stderr)
        return 2
    client = GatewayClient(args.gateway, args.identity, args.secret)
    receiver = Receiver(args.identity, keys, args.secret, client.public_key, client.download_blob)
    recording = Recording(args.feed, args.rendition, args.out)
    lock = threading.Lock()
    enough = threading.Event()
    # SIGTERM (a service manager, `timeout`, `kill`) ends the run as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: enough.set())

    def on_received(received: Received) -> None:
        if received.meta is None or received.segment is None:
            return
        with lock:
            if recording.add(received.meta, received.segment) and received.meta.kind != "init":
                print(f"received {args.feed}/{args.rendition}/{received.meta.seq} ({len(received.segment)} bytes)", flush=True)
            if args.segments and recording.media_count >= args.segments and recording.has_init:
                enough.set()

    app = build_callback_app(receiver, on_received, path=args.path)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=int(port), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():  # uvicorn gives up when it cannot bind
            print(f"orbitcast receive: cannot listen on {args.listen}", file=sys.stderr)
            return 2
        time.sleep(0.05)
    print(f"orbitcast receive: {args.identity} listening on http://{args.listen}{args.path}", flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        while not enough.is_set() and (deadline is None or time.monotonic() < deadline):
            enough.wait(0.2)
    except KeyboardInterrupt:
        pass
    server.should_exit = True
    thread.join(timeout=10)
    with lock:
        recording.close()
        for first, last in recording.gaps:
            print(f"gap: {args.feed}/{args.rendition} seq {first}..{last} missing", flush=True)
        if not recording.has_init:
            print("orbitcast receive: no init segment arrived; nothing written", file=sys.stderr)
            return 1
        seqs = recording.written
        span = f"seq {seqs[0]}..{seqs[-1]}" if seqs else "no media"
        print(f"wrote {args.out}: {len(seqs)} segments ({span}), {recording.duration():.2f} s, {recording.size} bytes", flush=True)
        if recording.late:
            print(f"late: {recording.late} segments arrived after their place in the file (dropped)", flush=True)
    refused = {k: v for k, v in receiver.counters.items() if k != "accepted"}
    if refused:
        print(f"refused: {refused}", flush=True)
    return 0
