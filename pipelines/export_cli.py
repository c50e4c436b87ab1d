"""`orbitcast export`: a clip of a feed's archive, written by stream copy from the certified
segments, provable with `orbitcast verify --recording CLIP --ledger URL`.

    orbitcast export iss --from 2025-01-31T12:00:00Z --to 2025-01-31T12:00:30Z -o clip.mp4 [--rendition 720p] [--exact]

The work is `orbitcast.export` (HTTP injected); this module is the transport (the standard
library's urllib, as `orbitcast verify`) and the exit status: 0 when the clip is written, 2 for
a bad request (a malformed or reversed range, no media in it, an unknown rung, an unwritable
output), 1 when the server could not be read.
"""

from __future__ import annotations

import argparse
import sys

from orbitcast.delivery.timeshift import BadWindow, parse_instant

DEFAULT_URL = "http://127.0.0.1:8000"  # the local demo (`orbitcast demo`, serve.port)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("feed", help="the feed, e.g. iss")
    p.add_argument("--from", dest="start", required=True, metavar="T",
                   help="start: ISO 8601 (UTC unless it says otherwise) or Unix seconds")
    p.add_argument("--to", dest="end", required=True, metavar="T", help="end, as --from")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the MP4 to write")
    p.add_argument("--rendition", default=None, help="the rung (default: the highest)")
    p.add_argument("--exact", action="store_true",
                   help="start at --from itself: the frames up to the next keyframe are encoded anew (and are "
                        "the only ones verify cannot prove); default: start at the keyframe at or before --from")
    p.add_argument("--url", default=DEFAULT_URL, help="the orbitcast server (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from orbitcast.export import ExportError, export_clip
    from pipelines.verify_cli import fetch

    try:
        start, end = parse_instant(args.start, "--from"), parse_instant(args.end, "--to")
    except BadWindow as e:
        print(f"orbitcast export: {e}", file=sys.stderr)
        return 2
    try:
        result = export_clip(args.url, args.feed, start, end, args.out, fetch, args.rendition, args.exact)
    except ExportError as e:
        print(f"orbitcast export: {e}", file=sys.stderr)
        return 2 if e.usage else 1
    print(result.summary, file=sys.stderr)
    print(f"prove it: orbitcast verify --recording {args.out} --ledger {args.url.rstrip('/')}/ledger/{args.feed}",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orbitcast export", description="A clip of a feed's archive.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
