"""Matching a recording against the ledger: a file written by `orbitcast receive` (one
rendition: init segment, then media segments concatenated).

Splitting it back at `moof` boxes is not enough, because one segment may hold several
moof/mdat pairs (LL-HLS parts). Instead the ledger tells us what the segments are: the verifier
fetches *every* entry up to a signed head and recomputes the root (`trusted_heads.verify_entries`:
one O(n) check authenticates all leaves at once, instead of one proof per segment); then,
starting after the init boxes, it looks at each top-level box boundary for a leaf whose size
ends at a later box boundary and whose SHA-256 equals the bytes in between (hashing
incrementally across boundaries, so each byte is hashed about once). Matched leaves pass. When
nothing matches, the leaf that should come next (by seq, in the rendition) is named as failed,
and the scan resumes at the next offset where a leaf matches. Gaps in seq between matched
segments are reported as missing; bytes that match no leaf and cannot be attributed are reported
by byte range. A segment cut short at the end of the file is reported as truncated.

Init segments are not ledger entries, so they are not checked here.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence

from nacl.signing import VerifyKey

from ..media.fmp4 import Fmp4Error, iter_boxes
from .http_client import Fetch, fetch_entries, fetch_head
from .leaf import LeafError, LeafFields
from .tree_head import SignedTreeHead, TreeHeadError
from .trusted_heads import verify_entries
from .verify_report import Report, SegmentResult

_SEGMENT_START_BOXES = {b"styp", b"moof", b"sidx", b"emsg", b"prft"}


def box_boundaries(data: bytes | memoryview) -> tuple[int, list[int]]:
    """Where the init segment ends, and every top-level box boundary after it (with the end of
    the file, and where the boxes stop when the rest is garbage or a truncated box)."""
    boxes: list[tuple[bytes, int, int]] = []
    try:
        for box in iter_boxes(data):
            boxes.append(box)
    except Fmp4Error:
        pass  # the rest is not a box: the matcher attributes those bytes by range
    parsed_end = boxes[-1][2] if boxes else 0
    init_end = next((s for kind, s, _ in boxes if kind in _SEGMENT_START_BOXES), parsed_end)
    return init_end, sorted({s for _, s, _ in boxes if s >= init_end} | {parsed_end, len(data)})


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
    init_end, boundaries = box_boundaries(view)
    matcher = _Matcher(view, boundaries, leaves, rendition)
    matcher.run(init_end)
    report.results = matcher.results
    if not report.results:
        report.fatal = "the recording holds no media segments"
    return report


def verify_recording_url(
    data: bytes,
    ledger_base: str,
    fetch: Fetch,
    verify_key: VerifyKey,
    rendition: str | None = None,
) -> Report:
    """`orbitcast verify --recording FILE --ledger http://HOST:PORT/ledger/{feed}`."""
    base = ledger_base.rstrip("/")
    if base.endswith("/sth"):
        base = base[: -len("/sth")]
    try:
        head = fetch_head(fetch, base)
        entries = fetch_entries(fetch, base, head.tree_size)
    except Exception as e:  # noqa: BLE001 - transport or parse: nothing can be checked
        return Report(fatal=f"cannot read the ledger at {base}: {type(e).__name__}: {e}")
    return verify_recording(data, entries, head, verify_key, rendition)


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
