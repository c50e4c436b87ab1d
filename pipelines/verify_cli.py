"""`orbitcast verify`: check segments against the certification ledger over real HTTP.

    orbitcast verify http://HOST:PORT/live/iss/master.m3u8 [--pubkey HEX] [--known-ledgers FILE]
    orbitcast verify --recording iss.mp4 --ledger http://HOST:PORT/ledger/iss [--pubkey HEX]

A recording is a file of `orbitcast receive` (matched by bytes, `recording_match`) or a clip of
`orbitcast export` (its MP4 comment says so; matched by samples, `clip_match`).

The checks are `orbitcast.ledger.verify` (pure functions with the HTTP injected) and the key
pinning is `orbitcast.ledger.known_keys`; this module is only the transport (urllib from the
standard library, so the CLI needs no extra package), the table and the exit status: 0 when
every segment verifies, 1 when any does not (each failure is named on stderr as well as in the
table) or the server's key differs from the pinned one, 2 for a usage error (a corrupt
known-ledgers file included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from nacl.signing import VerifyKey

from orbitcast.ledger.http_client import fetch_verify_key, ledger_root_for
from orbitcast.ledger.known_keys import KnownKeysError, LedgerKeyChanged, Trust, default_path, trust_on_first_use
from orbitcast.ledger.verify import Report, verify_recording_url, verify_stream

TIMEOUT_S = 15.0
MAX_ERROR_BODY = 300
USER_AGENT = "orbitcast-verify/1"


class FetchError(RuntimeError):
    """A non-2xx answer or a transport failure; the message becomes the table's reason.
    `status`: the HTTP status of an answer (None when there was none)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def fetch(url: str) -> bytes:
    """GET `url`; raise `FetchError` on anything but a 2xx answer."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        body = e.read(MAX_ERROR_BODY).decode("utf-8", "replace").strip()
        try:  # the ledger answers {"error": "..."}: show the message, not the JSON
            body = json.loads(body).get("error", body)
        except (ValueError, AttributeError):
            pass
        raise FetchError(f"HTTP {e.code} from {url}: {body}", e.code) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(f"cannot reach {url}: {reason}") from None


def parse_pubkey(text: str) -> VerifyKey:
    hex_part = text.strip().removeprefix("ed25519:").removeprefix("public:")
    try:
        raw = bytes.fromhex(hex_part)
    except ValueError:
        raise argparse.ArgumentTypeError("--pubkey must be 64 hex digits") from None
    if len(raw) != 32:
        raise argparse.ArgumentTypeError("--pubkey must be 32 bytes (64 hex digits)")
    return VerifyKey(raw)


def _feed_of(master_url: str) -> str | None:
    parts = [p for p in urlsplit(master_url).path.split("/") if p]
    return parts[1] if len(parts) >= 2 and parts[0] == "live" else None


def ledger_feed_base(ledger: str, feed: str | None) -> str:
    """`http://h/ledger/{feed}` from a feed URL (kept), a root `http://h/ledger` (+ feed), or
    any URL of the feed's log (`.../sth`, `.../proof/...`: cut back to the feed)."""
    parts = urlsplit(ledger)
    segs = [p for p in parts.path.split("/") if p]
    if "ledger" in segs:
        i = segs.index("ledger")
        rest = segs[i + 1 :]
        if rest and rest[0] != "pubkey":
            segs = segs[: i + 2]
        elif feed:
            segs = segs[: i + 1] + [feed]
        else:
            raise ValueError(f"{ledger} names no feed: use http://HOST:PORT/ledger/FEED or --feed")
    elif feed:
        segs = [*segs, "ledger", feed]
    else:
        raise ValueError(f"{ledger} is not a ledger URL (http://HOST:PORT/ledger/FEED)")
    return urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(segs), "", ""))


def _print_report(report: Report, key: VerifyKey, key_note: str, elapsed: float) -> None:
    out = sys.stdout  # looked up at call time: tests capture it
    print(report.table(), file=out)
    if report.head is not None:
        h = report.head
        print(f"against signed tree head of {h.feed}: size {h.tree_size}, root {h.root_hash.hex()}, "
              f"timestamp {h.timestamp_ms}", file=out)
    print(f"log key {bytes(key).hex()} ({key_note})", file=out)
    print(f"verified in {elapsed:.2f} s", file=out)


def _trusted_key(args: argparse.Namespace, ledger_root: str) -> tuple[VerifyKey, str] | int:
    """The key to verify with and how it is trusted; or the exit status when there is none."""
    if args.pubkey is not None:
        return args.pubkey, "given with --pubkey"
    try:
        served = fetch_verify_key(fetch, ledger_root)
    except Exception as e:  # noqa: BLE001 - transport or a malformed answer: nothing to trust
        print(f"orbitcast verify: cannot read the ledger key at {ledger_root}/pubkey: {e}", file=sys.stderr)
        return 1
    path = args.known_ledgers or default_path()
    try:
        trust = trust_on_first_use(path, ledger_root, served)
    except LedgerKeyChanged as e:
        print(f"orbitcast verify: {e}\nOr check against the new key this once with "
              f"--pubkey {e.served.hex()}.\nNothing was verified.", file=sys.stderr)
        return 1
    except (KnownKeysError, ValueError) as e:  # a corrupt file, or a ledger URL with no origin
        print(f"orbitcast verify: {e}", file=sys.stderr)
        return 2
    if trust is Trust.FIRST_USE:
        return served, f"first use of this server: pinned in {path}"
    return served, f"pinned in {path}"


def _finish(report: Report) -> int:
    for r in report.failures:
        print(f"orbitcast verify: FAILED {r.segment}: {r.reason}", file=sys.stderr)
    if report.fatal:
        print(f"orbitcast verify: {report.fatal}", file=sys.stderr)
    return 0 if report.ok else 1


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.recording:
        if not args.ledger:
            print("orbitcast verify: --recording needs --ledger http://HOST:PORT/ledger/FEED", file=sys.stderr)
            return 2
        try:
            base = ledger_feed_base(args.ledger, args.feed)
        except ValueError as e:
            print(f"orbitcast verify: {e}", file=sys.stderr)
            return 2
        try:
            with open(args.recording, "rb") as f:
                data = f.read()
        except OSError as e:
            print(f"orbitcast verify: cannot read {args.recording}: {e.strerror or e}", file=sys.stderr)
            return 2
        from orbitcast.ledger.clip_match import ClipTagError, clip_tag_of, verify_clip  # PyAV: only for files

        try:
            clip = clip_tag_of(data)  # a clip from `orbitcast export`: proven by its samples
        except ClipTagError as e:
            print(f"orbitcast verify: {args.recording}: {e}", file=sys.stderr)
            return 1
        trusted = _trusted_key(args, base.rsplit("/", 1)[0])
        if isinstance(trusted, int):
            return trusted
        key, key_note = trusted
        if clip is not None:
            report = verify_clip(data, clip, base, fetch, key)
        else:
            report = verify_recording_url(data, base, fetch, key, args.rendition)
    else:
        if not args.url:
            print("orbitcast verify: give a master playlist URL, or --recording FILE --ledger URL", file=sys.stderr)
            return 2
        base = None
        if args.ledger:
            try:
                base = ledger_feed_base(args.ledger, args.feed or _feed_of(args.url))
            except ValueError as e:
                print(f"orbitcast verify: {e}", file=sys.stderr)
                return 2
        trusted = _trusted_key(args, base.rsplit("/", 1)[0] if base else ledger_root_for(args.url))
        if isinstance(trusted, int):
            return trusted
        key, key_note = trusted
        report = verify_stream(args.url, fetch, key, base)
    _print_report(report, key, key_note, time.perf_counter() - started)
    return _finish(report)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", nargs="?", help="master (or media) playlist URL, e.g. http://127.0.0.1:8000/live/iss/master.m3u8")
    parser.add_argument("--recording", metavar="FILE", help="a file written by `orbitcast receive` (init + segments of one rendition) "
                                                           "or a clip written by `orbitcast export`")
    parser.add_argument("--ledger", metavar="URL", help="the feed's ledger, http://HOST:PORT/ledger/FEED (default for a playlist: same host)")
    parser.add_argument("--feed", help="the feed, when --ledger gives only http://HOST:PORT/ledger")
    parser.add_argument("--rendition", help="recording: the rendition it holds (default: found from its first segment)")
    parser.add_argument("--pubkey", type=parse_pubkey, metavar="HEX",
                        help="the log's Ed25519 public key (default: the server's /ledger/pubkey, pinned on first use "
                             "in the known-ledgers file and refused when it changes); skips the known-ledgers file")
    parser.add_argument("--known-ledgers", type=Path, metavar="FILE",
                        help="the file of ledger keys pinned per server "
                             "(default: $XDG_CONFIG_HOME/orbitcast/known_ledgers, else ~/.config/orbitcast/known_ledgers)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orbitcast verify", description="Check segments against the certification ledger.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
