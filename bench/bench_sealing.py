"""Sealing and opening throughput on 2 MB segments (pure Python + PyNaCl/libsodium).

    .venv/bin/python bench/bench_sealing.py [--segments 50] [--size 2000000] [--recipients 3]

Sealing = sha256 digest + secretbox of the segment (once) + one E2E file message per
recipient. Opening = E2E box + file JSON + blob secretbox + size and digest checks, as the
edge's `Receiver` does it (callback MAC included, blob fetched from memory).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from datetime import datetime, timezone

from orbitcast.sealing.blobs import SegmentMeta
from orbitcast.sealing.callback import build_callback_fields
from orbitcast.sealing.keys import generate_key_pair
from orbitcast.sealing.receiver import Receiver
from orbitcast.sealing.sealer import SegmentSealer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--segments", type=int, default=50)
    parser.add_argument("--size", type=int, default=2_000_000)
    parser.add_argument("--recipients", type=int, default=3)
    args = parser.parse_args()

    packager, edge = generate_key_pair(), generate_key_pair()
    recipients = {"*ORBEDGE": edge.public}
    for i in range(args.recipients - 1):
        recipients[f"*SUBSC{i:02d}"] = generate_key_pair().public
    blobs: dict[str, bytes] = {}

    def upload(blob: bytes) -> str:
        blob_id = secrets.token_hex(16)
        blobs[blob_id] = blob
        return blob_id

    receiver = Receiver("*ORBEDGE", edge, "secret", {"*ORBPACK": packager.public}.get, blobs.__getitem__)
    sealer = SegmentSealer(packager)
    segments = [os.urandom(args.size) for _ in range(min(args.segments, 8))]
    seal_times: list[float] = []
    open_times: list[float] = []
    for n in range(args.segments):
        data = segments[n % len(segments)]
        start = time.perf_counter()
        meta = SegmentMeta.for_data(data, feed="iss", rendition="720p", seq=n, duration=2.0,
                                    program_date_time=datetime.now(timezone.utc))
        sealed = sealer.seal_segment(data, meta, recipients, upload)
        seal_times.append(time.perf_counter() - start)
        mine = next(o for o in sealed.outgoing if o.to_id == "*ORBEDGE")
        fields = build_callback_fields("secret", from_id="*ORBPACK", to_id="*ORBEDGE", message_id=secrets.token_hex(8),
                                       date=int(time.time()), nonce_hex=mine.envelope.nonce_hex,
                                       box_hex=mine.envelope.box_hex)
        start = time.perf_counter()
        received = receiver.handle_fields(fields)
        open_times.append(time.perf_counter() - start)
        assert received.segment == data
        blobs.clear()

    mb = args.size / 1e6
    for name, times in (("seal", seal_times), ("open", open_times)):
        ordered = sorted(times)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(f"{name}: {mb / statistics.median(times):8.1f} MB/s  median {statistics.median(times) * 1e3:6.2f} ms"
              f"  p99 {p99 * 1e3:6.2f} ms  per {args.size} B segment ({args.recipients} recipients, {args.segments} runs)")


if __name__ == "__main__":
    main()
