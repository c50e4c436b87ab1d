"""Verification logic behind `orbitcast verify`: pure functions, HTTP injected as `fetch`.

Two checks:

* `verify_stream(master_url, fetch)`: walk the HLS master playlist to every media playlist and
  segment, fetch the feed's signed tree head, and for each segment its bytes and inclusion
  proof. A segment passes only if: the proof's head is signed by the published key and is the
  pinned head or consistent with it; the proof's leaf names this feed/rendition/seq; the audit
  path leads from the leaf to the head's root; and the segment's size and SHA-256 equal the
  leaf's (and its EXT-X-PROGRAM-DATE-TIME, when the playlist gives one, equals the leaf's).

* `verify_recording(data, entries, head, key)`: a file written by `orbitcast receive` (one
  rendition: init segment, then media segments concatenated). Splitting it back at `moof`
  boxes is not enough, because one segment may hold several moof/mdat pairs (LL-HLS parts).
  Instead the ledger tells us what the segments are: the verifier fetches *every* entry up to
  a signed head and recomputes the root (one O(n) check authenticates all leaves at once,
  instead of one proof per segment); then, starting after the init boxes, it looks at each
  top-level box boundary for a leaf whose size ends at a later box boundary and whose SHA-256
  equals the bytes in between (hashing incrementally across boundaries, so each byte is hashed
  about once). Matched leaves pass. When nothing matches, the leaf that should come next (by
  seq, in the rendition) is named as failed, and the scan resumes at the next offset where a
  leaf matches. Gaps in seq between matched segments are reported as missing; bytes that match
  no leaf and cannot be attributed are reported by byte range. A segment cut short at the end
  of the file is reported as truncated.

Init segments are not ledger entries, so they are not checked here.

`fetch(url) -> bytes` must raise on any non-2xx answer; the exception text becomes the reason.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

from nacl.signing import VerifyKey

from .leaf import LeafError, LeafFields, decode_leaf, format_pdt
from .merkle import MerkleTree, leaf_hash
from .proofs import ProofError, verify_inclusion
from .tree_head import SignedTreeHead, TreeHeadError, check_consistent

Fetch = Callable[[str], bytes]


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentResult:
    segment: str  # feed/rendition/seq, or a byte range for unattributable bytes
    ok: bool
    reason: str = ""


@dataclass
class Report:
    results: list[SegmentResult] = field(default_factory=list)
    head: SignedTreeHead | None = None
    fatal: str = ""  # set when nothing could be checked (no trusted head)

    @property
    def ok(self) -> bool:
        return not self.fatal and bool(self.results) and all(r.ok for r in self.results)

    @property
    def failures(self) -> list[SegmentResult]:
        return [r for r in self.results if not r.ok]

    def table(self) -> str:
        """A plain two-column table: segment, result (and why, on failure)."""
        rows = [("segment", "result")]
        rows += [(r.segment, "ok" if r.ok else f"FAIL: {r.reason}") for r in self.results]
        width = max(len(a) for a, _ in rows)
        lines = [f"{a.ljust(width)}  {b}" for a, b in rows]
        if self.fatal:
            lines.append(f"FATAL: {self.fatal}")
        passed = sum(r.ok for r in self.results)
        lines.append(f"{passed}/{len(self.results)} segments verified")
        return "\n".join(lines)


class SegmentFailure(Exception):
    """One segment did not verify; the message is the reason shown in the table."""


# -- trusted heads -----------------------------------------------------------------------------


class HeadBook:
    """The heads a verification trusts: the pinned one, and any other shown consistent with it.

    `consistency(first, second)` returns the proof hashes between two sizes (injected HTTP).
    """

    def __init__(
        self,
        pinned: SignedTreeHead,
        verify_key: VerifyKey,
        consistency: Callable[[int, int], list[bytes]],
    ) -> None:
        pinned.verify(verify_key)
        self.pinned = pinned
        self._key = verify_key
        self._consistency = consistency
        self._trusted: dict[tuple[int, bytes], SignedTreeHead] = {
            (pinned.tree_size, pinned.root_hash): pinned
        }

    def accept(self, head: SignedTreeHead) -> None:
        """Raise `TreeHeadError` (BadSignature / LogShrank / InconsistentHeads) unless trusted."""
        if self._trusted.get((head.tree_size, head.root_hash)) == head:
            return
        head.verify(self._key)
        if head.feed != self.pinned.feed:
            raise TreeHeadError(f"head of feed {head.feed}, expected {self.pinned.feed}")
        if (head.tree_size, head.root_hash) not in self._trusted:
            # Order by time so that a later, smaller head is reported as a shrinking log.
            a, b = sorted((self.pinned, head), key=lambda h: (h.timestamp_ms, h.tree_size))
            small, large = sorted((a.tree_size, b.tree_size))
            try:
                proof = self._consistency(small, large) if b.tree_size >= a.tree_size else []
            except Exception as e:  # noqa: BLE001 - injected transport: any failure is a reason
                raise TreeHeadError(f"no consistency proof {small} -> {large}: {e}") from None
            check_consistent(a, b, proof, self._key)
        self._trusted[(head.tree_size, head.root_hash)] = head


def check_segment(
    data: bytes,
    proof: dict[str, Any],
    book: HeadBook,
    feed: str,
    rendition: str,
    seq: int,
    program_date_time: datetime | None = None,
) -> LeafFields:
    """Raise `SegmentFailure` with the reason unless the segment verifies; return its leaf."""
    try:
        head = SignedTreeHead.from_json(proof["tree_head"])
        leaf = bytes.fromhex(proof["leaf"])
        index = proof["leaf_index"]
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError("leaf_index is not an integer")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise SegmentFailure(f"malformed proof: {e}") from None
    try:
        book.accept(head)
    except TreeHeadError as e:
        raise SegmentFailure(f"tree head not trusted: {type(e).__name__}: {e}") from None
    try:
        fields = decode_leaf(leaf)
    except LeafError as e:
        raise SegmentFailure(f"malformed leaf: {e}") from None
    if (fields.feed, fields.rendition, fields.seq) != (feed, rendition, seq):
        raise SegmentFailure(
            f"proof is for {fields.feed}/{fields.rendition}/{fields.seq}, not this segment"
        )
    try:
        verify_inclusion(index, head.tree_size, leaf_hash(leaf), path, head.root_hash)
    except ProofError as e:
        raise SegmentFailure(f"not in the log: {e}") from None
    if len(data) != fields.size:
        raise SegmentFailure(f"size {len(data)} bytes, ledger says {fields.size}")
    digest = hashlib.sha256(data).digest()
    if digest != fields.sha256:
        raise SegmentFailure(
            f"bytes differ from the ledger (sha256 {digest.hex()[:16]}…, "
            f"ledger {fields.sha256.hex()[:16]}…)"
        )
    if program_date_time is not None and format_pdt(program_date_time) != fields.program_date_time:
        raise SegmentFailure(
            f"playlist program date-time {format_pdt(program_date_time)} differs from the "
            f"ledger's {fields.program_date_time}"
        )
    return fields


# -- HLS walking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRef:
    url: str
    feed: str
    rendition: str
    seq: int
    program_date_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"{self.feed}/{self.rendition}/{self.seq}"


_SEGMENT_PATH = re.compile(r"/live/([^/]+)/([^/]+)/(\d+)\.m4s$")
_MEDIA_PATH = re.compile(r"/live/([^/]+)/([^/]+)/[^/]+\.m3u8$")
_URI_ATTR = re.compile(r'URI="([^"]*)"')


def parse_pdt_tag(value: str) -> datetime:
    """EXT-X-PROGRAM-DATE-TIME: ISO 8601 with Z or an offset (RFC 8216 4.4.4.6)."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when


def parse_master(text: str, base_url: str) -> list[str]:
    """Media playlist URLs of a multivariant playlist (EXT-X-STREAM-INF and EXT-X-MEDIA URIs).

    A minimal RFC 8216 reader (the `m3u8` package is only a test dependency): the tags a
    verifier needs, nothing else. A media playlist given directly is returned as itself.
    """
    lines = [ln.strip() for ln in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an M3U8 playlist")
    if any(ln.startswith("#EXTINF") for ln in lines):
        return [base_url]
    urls: list[str] = []
    expect_uri = False
    for ln in lines[1:]:
        if not ln:
            continue
        if ln.startswith("#EXT-X-STREAM-INF"):
            expect_uri = True
        elif ln.startswith("#EXT-X-MEDIA:"):
            m = _URI_ATTR.search(ln)
            if m:
                urls.append(urljoin(base_url, m.group(1)))
        elif not ln.startswith("#") and expect_uri:
            urls.append(urljoin(base_url, ln))
            expect_uri = False
    return list(dict.fromkeys(urls))  # de-duplicate, keep order


def parse_media(text: str, base_url: str) -> list[SegmentRef]:
    """The media segments of one media playlist, with feed/rendition/seq and program date-time.

    feed/rendition/seq come from the orbitcast URL scheme `/live/{feed}/{rendition}/{seq}.m4s`;
    other segment names fall back to the playlist's path and EXT-X-MEDIA-SEQUENCE numbering.
    Only an explicit EXT-X-PROGRAM-DATE-TIME is checked (derived times would add rounding).
    """
    lines = [ln.strip() for ln in text.splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an M3U8 playlist")
    pm = _MEDIA_PATH.search(urlsplit(base_url).path)
    seq = 0
    pdt: datetime | None = None
    in_segment = gap = False
    refs: list[SegmentRef] = []
    for ln in lines[1:]:
        if not ln:
            continue
        if ln == "#EXT-X-GAP":
            gap = True  # a segment that never arrived: listed to keep the numbering, no media
        elif ln.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(ln.split(":", 1)[1])
        elif ln.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = parse_pdt_tag(ln.split(":", 1)[1])
        elif ln.startswith("#EXTINF"):
            in_segment = True
        elif not ln.startswith("#") and in_segment and gap:
            seq += 1
            pdt = None
            in_segment = gap = False
        elif not ln.startswith("#") and in_segment:
            url = urljoin(base_url, ln)
            m = _SEGMENT_PATH.search(urlsplit(url).path)
            if m:
                feed, rendition, s = m.group(1), m.group(2), int(m.group(3))
            elif pm:
                feed, rendition, s = pm.group(1), pm.group(2), seq
            else:
                raise ValueError(f"cannot tell feed/rendition/seq of {url}")
            refs.append(SegmentRef(url, feed, rendition, s, pdt))
            seq += 1
            pdt = None
            in_segment = False
    return refs


def walk_hls(master_url: str, fetch: Fetch) -> list[SegmentRef]:
    """Master playlist -> media playlists -> segment references, in playlist order."""
    refs: list[SegmentRef] = []
    master = fetch(master_url).decode("utf-8")
    for media_url in parse_master(master, master_url):
        text = master if media_url == master_url else fetch(media_url).decode("utf-8")
        refs.extend(parse_media(text, media_url))
    return refs


def ledger_base_for(url: str, feed: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/ledger/{feed}"


def _json(fetch: Fetch, url: str) -> Any:
    return json.loads(fetch(url).decode("utf-8"))


def fetch_verify_key(fetch: Fetch, ledger_root: str) -> VerifyKey:
    """The key published at `{ledger_root}/pubkey` (trust on first use unless pinned)."""
    obj = _json(fetch, f"{ledger_root.rstrip('/')}/pubkey")
    return VerifyKey(bytes.fromhex(obj["public_key"]))


def _consistency_fetcher(fetch: Fetch, base: str) -> Callable[[int, int], list[bytes]]:
    def get(first: int, second: int) -> list[bytes]:
        obj = _json(fetch, f"{base}/consistency?first={first}&second={second}")
        return [bytes.fromhex(h) for h in obj["proof"]]

    return get


def verify_stream(
    master_url: str,
    fetch: Fetch,
    verify_key: VerifyKey | None = None,
    ledger_base: str | None = None,
) -> Report:
    """Check every segment reachable from `master_url` against the ledger (see module doc)."""
    report = Report()
    try:
        refs = walk_hls(master_url, fetch)
    except Exception as e:  # noqa: BLE001 - transport or parse: either way nothing to check
        report.fatal = f"cannot read playlists: {e}"
        return report
    if not refs:
        report.fatal = "the playlists list no segments"
        return report
    by_feed: dict[str, list[SegmentRef]] = {}
    for ref in refs:
        by_feed.setdefault(ref.feed, []).append(ref)
    for feed, feed_refs in by_feed.items():
        base = ledger_base or ledger_base_for(master_url, feed)
        try:
            key = verify_key or fetch_verify_key(fetch, base.rsplit("/", 1)[0])
            pinned = SignedTreeHead.from_json(_json(fetch, f"{base}/sth"))
            book = HeadBook(pinned, key, _consistency_fetcher(fetch, base))
        except Exception as e:  # noqa: BLE001
            report.fatal = f"no trusted tree head for {feed}: {type(e).__name__}: {e}"
            report.results += [SegmentResult(r.name, False, report.fatal) for r in feed_refs]
            continue
        report.head = report.head or pinned
        for ref in feed_refs:
            report.results.append(_check_ref(ref, fetch, base, book))
    return report


def _check_ref(ref: SegmentRef, fetch: Fetch, base: str, book: HeadBook) -> SegmentResult:
    try:
        data = fetch(ref.url)
    except Exception as e:  # noqa: BLE001
        return SegmentResult(ref.name, False, f"cannot fetch segment: {e}")
    proof_url = f"{base}/proof/{ref.rendition}/{ref.seq}"
    try:
        # Pinned head first (the proof is then against the head already checked); a segment
        # newer than the pinned head is proven against a later head, checked for consistency.
        try:
            proof = _json(fetch, f"{proof_url}?tree_size={book.pinned.tree_size}")
        except Exception:  # noqa: BLE001
            proof = _json(fetch, proof_url)
    except Exception as e:  # noqa: BLE001
        return SegmentResult(ref.name, False, f"no proof: {e}")
    try:
        check_segment(data, proof, book, ref.feed, ref.rendition, ref.seq, ref.program_date_time)
    except SegmentFailure as e:
        return SegmentResult(ref.name, False, str(e))
    return SegmentResult(ref.name, True)


# -- recordings --------------------------------------------------------------------------------

_SEGMENT_START_BOXES = {b"styp", b"moof", b"sidx", b"emsg", b"prft"}


def top_level_boxes(data: bytes | memoryview) -> tuple[list[tuple[int, bytes, int]], int]:
    """ISO BMFF top-level boxes as (offset, type, size); and where parsing stopped (== len on
    a well-formed file; earlier when the rest is not a box: garbage or a truncated box)."""
    boxes: list[tuple[int, bytes, int]] = []
    pos, end = 0, len(data)
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            break
        boxes.append((pos, bytes(kind), size))
        pos += size
    return boxes, pos


def verify_entries(
    entries: Sequence[bytes], head: SignedTreeHead, verify_key: VerifyKey
) -> list[LeafFields]:
    """Authenticate a full list of log entries [0, head.tree_size) against a signed head."""
    head.verify(verify_key)
    if len(entries) != head.tree_size:
        raise TreeHeadError(f"{len(entries)} entries for a head of size {head.tree_size}")
    tree = MerkleTree.from_leaf_hashes(leaf_hash(e) for e in entries)
    if tree.root() != head.root_hash:
        raise TreeHeadError("the entries do not hash to the signed root")
    return [decode_leaf(e) for e in entries]


def verify_recording(
    data: bytes,
    entries: Sequence[bytes],
    head: SignedTreeHead,
    verify_key: VerifyKey,
    rendition: str | None = None,
) -> Report:
    """Check a recording (init + segments of one rendition) against authenticated entries."""
    report = Report(head=head)
    try:
        leaves = verify_entries(entries, head, verify_key)
    except (TreeHeadError, LeafError) as e:
        report.fatal = f"ledger entries not trusted: {type(e).__name__}: {e}"
        return report
    view = memoryview(data)
    boxes, parsed_end = top_level_boxes(view)
    init_end = next((o for o, kind, _ in boxes if kind in _SEGMENT_START_BOXES), parsed_end)
    boundaries = sorted({o for o, _, _ in boxes if o >= init_end} | {parsed_end, len(data)})
    matcher = _Matcher(view, boundaries, leaves, rendition)
    matcher.run(init_end)
    report.results = matcher.results
    if not report.results:
        report.fatal = "the recording holds no media segments"
    return report


class _Matcher:
    """The scan described in the module docstring, kept in one place with its state."""

    def __init__(
        self,
        view: memoryview,
        boundaries: list[int],
        leaves: Iterable[LeafFields],
        rendition: str | None,
    ) -> None:
        self.view = view
        self.end = len(view)
        self.bounds = boundaries
        self._bound_set = set(boundaries)
        self.by_size: dict[int, dict[bytes, LeafFields]] = {}
        self.all = list(leaves)
        for leaf in self.all:
            self.by_size.setdefault(leaf.size, {})[leaf.sha256] = leaf
        self.max_size = max(self.by_size, default=0)
        self.rendition = rendition
        self.order: list[LeafFields] = []
        self.results: list[SegmentResult] = []
        if rendition is not None:
            self._fix_rendition(rendition)

    def _fix_rendition(self, rendition: str) -> None:
        self.rendition = rendition
        self.order = sorted((lf for lf in self.all if lf.rendition == rendition), key=lambda lf: lf.seq)
        self.seqs = [lf.seq for lf in self.order]

    def _name(self, leaf: LeafFields) -> str:
        return f"{leaf.feed}/{leaf.rendition}/{leaf.seq}"

    def _after(self, leaf: LeafFields) -> LeafFields | None:
        i = bisect.bisect_right(self.seqs, leaf.seq)
        return self.order[i] if i < len(self.order) else None

    def _before(self, leaf: LeafFields) -> LeafFields | None:
        i = bisect.bisect_left(self.seqs, leaf.seq)
        return self.order[i - 1] if i > 0 else None

    def match_at(self, off: int) -> tuple[LeafFields, int] | None:
        h = hashlib.sha256()
        pos = off
        i = bisect.bisect_right(self.bounds, off)
        while i < len(self.bounds):
            b = self.bounds[i]
            size = b - off
            if size > self.max_size:
                break
            h.update(self.view[pos:b])
            pos = b
            cands = self.by_size.get(size)
            if cands:
                leaf = cands.get(h.copy().digest())
                if leaf is not None and (self.rendition is None or leaf.rendition == self.rendition):
                    return leaf, b
            i += 1
        return None

    def next_match(self, off: int) -> tuple[int, LeafFields, int] | None:
        i = bisect.bisect_right(self.bounds, off)
        for b in self.bounds[i:]:
            m = self.match_at(b)
            if m:
                return b, m[0], m[1]
        return None

    def run(self, off: int) -> None:
        expected: LeafFields | None = None  # the leaf that should come next, once aligned
        while off < self.end:
            m = self.match_at(off)
            if m is not None:
                leaf, nxt = m
                if self.rendition is None:
                    self._fix_rendition(leaf.rendition)
                if expected is not None and leaf.seq != expected.seq:
                    self._gap(expected, leaf)
                self.results.append(SegmentResult(self._name(leaf), True))
                expected, off = self._after(leaf), nxt
                continue
            attributed = False
            if expected is not None:
                if off + expected.size > self.end:
                    self._fail(expected, "recording ends inside this segment (truncated)")
                    return
                # The bytes where `expected` should be are not it: name it. If its length
                # lands on a box boundary (a changed byte, say), carry on right after it.
                self._fail(expected, "bytes differ from the ledger")
                skip = off + expected.size
                expected = self._after(expected)
                if skip == self.end or skip in self._bound_set:
                    off = skip
                    continue
                attributed = True
            found = self.next_match(off)
            if found is None:
                if not attributed:
                    self.results.append(
                        SegmentResult(f"bytes {off}-{self.end}", False, "match no ledger entry")
                    )
                return
            b, leaf, _ = found
            if not attributed:
                prev = None
                if not self.results:
                    # The first segment is the damaged one: the leaf just before the first
                    # match, if its size fits the gap, is the one that was changed.
                    if self.rendition is None:
                        self._fix_rendition(leaf.rendition)
                    prev = self._before(leaf)
                if prev is not None and prev.size == b - off:
                    self._fail(prev, "bytes differ from the ledger")
                else:
                    self.results.append(
                        SegmentResult(f"bytes {off}-{b}", False, "match no ledger entry")
                    )
            off = b

    def _fail(self, leaf: LeafFields, reason: str) -> None:
        self.results.append(SegmentResult(self._name(leaf), False, reason))

    def _gap(self, expected: LeafFields, found: LeafFields) -> None:
        if found.seq > expected.seq:
            for lf in self.order[bisect.bisect_left(self.seqs, expected.seq) : bisect.bisect_left(self.seqs, found.seq)]:
                self.results.append(SegmentResult(self._name(lf), False, "missing from the recording"))
        else:
            self.results.append(
                SegmentResult(self._name(found), False, f"out of order: after seq {expected.seq - 1}")
            )


def fetch_entries(fetch: Fetch, ledger_base: str, tree_size: int, page: int = 1000) -> list[bytes]:
    """Every entry [0, tree_size) from `{ledger_base}/entries`, page by page."""
    entries: list[bytes] = []
    while len(entries) < tree_size:
        start = len(entries)
        obj = _json(fetch, f"{ledger_base}/entries?start={start}&end={min(tree_size, start + page)}")
        got = [bytes.fromhex(e) for e in obj["entries"]]
        if obj.get("start") != start or not got:
            raise ValueError(f"entries page at {start} is empty or misplaced")
        entries.extend(got)
    return entries[:tree_size]


def verify_recording_url(
    data: bytes,
    ledger_base: str,
    fetch: Fetch,
    verify_key: VerifyKey | None = None,
    rendition: str | None = None,
) -> Report:
    """`orbitcast verify --recording FILE --ledger http://HOST:PORT/ledger/{feed}`."""
    base = ledger_base.rstrip("/")
    if base.endswith("/sth"):
        base = base[: -len("/sth")]
    try:
        key = verify_key or fetch_verify_key(fetch, base.rsplit("/", 1)[0])
        head = SignedTreeHead.from_json(_json(fetch, f"{base}/sth"))
        entries = fetch_entries(fetch, base, head.tree_size)
    except Exception as e:  # noqa: BLE001 - transport or parse: nothing can be checked
        return Report(fatal=f"cannot read the ledger at {base}: {type(e).__name__}: {e}")
    return verify_recording(data, entries, head, key, rendition)
