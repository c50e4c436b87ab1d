"""Proving a clip written by `orbitcast export` against the ledger.

A clip's container is new (boxes, offsets, timescales), so its bytes cannot be matched with
ledger entries as a recording's are (`recording_match`). What it shares with the certified
segments is its samples. The clip's MP4 comment (`orbitcast.export.tag.ClipTag`) names the feed,
rung and seqs it was cut from; that note is only a claim used to find the candidates:

1. each named segment is fetched from the server (`/live/{feed}/{rendition}/{seq}.m4s`, the
   same URL live and archived) and proven as `orbitcast verify` proves a live segment
   (`stream_check.check_segment`: inclusion proof under a signed tree head trusted through the
   pinned one, size and SHA-256 against the leaf);
2. the proven segments are demuxed (with the init segment the note names) and their samples
   laid end to end, per kind;
3. every video and audio sample of the clip must equal, byte for byte and in order, a run of
   those certified samples, each at the same time relative to the others (the clip's times are
   moved by one offset, found from the first video sample that matches); only the leading video
   frames the note says were encoded anew (`--exact`) may be uncovered, and they are reported.

A changed sample byte, a dropped, added or reordered sample, shifted timing, or a note that
names other segments fails, with the sample and segment named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from nacl.signing import VerifyKey

from ..delivery.names import INIT_NAME, init_uri
from ..export.tag import ClipTag, ClipTagError
from ..media.samples import Sample, SamplesError, read_comment, read_samples
from .http_client import Fetch, consistency_fetcher, fetch_head, fetch_json
from .stream_check import SegmentFailure, check_segment
from .trusted_heads import HeadBook
from .verify_report import Report, SegmentResult

TOLERANCE = Fraction(2, 1000)  # seconds: timescale rounding, far below a frame or an AAC frame
MAX_SEGMENTS = 3600  # a note naming more is not from the exporter (its range is bounded)
ROW = "clip samples"


@dataclass(frozen=True)
class Certified:
    segment: str  # feed/rendition/seq it came from
    sample: Sample


@dataclass(frozen=True)
class SampleMatch:
    ok: bool
    reason: str = ""
    proven: tuple[int, int] = (0, 0)  # video, audio samples equal to certified ones
    proven_seconds: float = 0.0  # video time they cover
    uncovered: int = 0  # leading video frames encoded anew (not certified)
    uncovered_seconds: float = 0.0


def clip_tag_of(data: bytes) -> ClipTag | None:
    """The clip note of a file, None when it has none; `ClipTagError` when it is malformed."""
    return ClipTag.parse(read_comment(data))


def _ms(t: Fraction) -> str:
    return f"{float(t):.3f} s"


def _align_video(clip: Sequence[Sample], cert: Sequence[Certified], lead: int) -> int | None:
    """Index in `cert` of the sample clip[lead] should be: the placement, among those where some
    clip sample equals a certified one, with the longest equal run from `lead`."""
    where: dict[bytes, list[int]] = {}
    for i, c in enumerate(cert):
        where.setdefault(c.sample.data, []).append(i)
    for j in range(lead, len(clip)):
        cands = [i - (j - lead) for i in where.get(clip[j].data, ()) if i - (j - lead) >= 0]
        if cands:
            def run(c0: int) -> int:
                n = 0
                while lead + n < len(clip) and c0 + n < len(cert) and clip[lead + n].data == cert[c0 + n].sample.data:
                    n += 1
                return n
            return max(cands, key=lambda c0: (run(c0), -c0))
    return None


def _compare(kind: str, clip: Sequence[Sample], first: int, cert: Sequence[Certified], c0: int,
             offset: Fraction) -> str:
    """'' when clip[first:] equals cert[c0:...] in bytes and (offset-corrected) time; else why not."""
    for k in range(first, len(clip)):
        i = c0 + k - first
        s = clip[k]
        if i >= len(cert):
            return f"{kind} sample {k} (at {_ms(s.pts)}) is past the end of the certified segments"
        c = cert[i]
        if s.data != c.sample.data:
            return f"{kind} sample {k} (at {_ms(s.pts)}) differs from the certified sample in {c.segment}"
        shift = max(abs(s.pts - offset - c.sample.pts), abs(s.dts - offset - c.sample.dts))
        if shift > TOLERANCE:
            return (f"{kind} sample {k} (at {_ms(s.pts)}) is timed {float(shift) * 1000:.1f} ms away from "
                    f"the certified sample in {c.segment}")
    return ""


def match_samples(clip: dict[str, list[Sample]], certified: dict[str, list[Certified]], reencoded: int = 0) -> SampleMatch:
    """Check the clip's samples against certified ones (module docstring, step 3)."""
    video, audio = clip.get("video", []), clip.get("audio", [])
    lead = min(reencoded, len(video))
    if lead == len(video):
        return SampleMatch(False, "the clip holds no copied video sample to prove")
    cert_v, cert_a = certified.get("video", []), certified.get("audio", [])
    c0 = _align_video(video, cert_v, lead)
    if c0 is None:
        return SampleMatch(False, "no video sample of the clip is one of the certified segments'")
    # One offset maps clip time to certified media time for both kinds, so A/V sync is checked too.
    offset = video[lead].pts - cert_v[c0].sample.pts
    why = _compare("video", video, lead, cert_v, c0, offset)
    if why:
        return SampleMatch(False, why)
    a0 = 0
    if audio:
        target = audio[0].pts - offset
        found = [i for i, c in enumerate(cert_a) if abs(c.sample.pts - target) <= TOLERANCE]
        if not found:
            return SampleMatch(False, f"audio sample 0 (at {_ms(audio[0].pts)}) has no certified sample at its time")
        a0 = found[0]
        why = _compare("audio", audio, 0, cert_a, a0, offset)
        if why:
            return SampleMatch(False, why)
    last = video[-1]
    proven_s = float(last.pts + last.duration - video[lead].pts)
    uncovered_s = float(video[lead].pts - video[0].pts) if lead else 0.0
    return SampleMatch(True, "", (len(video) - lead, len(audio)), proven_s, lead, uncovered_s)


def verify_clip(
    data: bytes,
    tag: ClipTag,
    ledger_base: str,
    fetch: Fetch,
    verify_key: VerifyKey,
) -> Report:
    """`orbitcast verify --recording CLIP --ledger http://HOST:PORT/ledger/{feed}` for a clip.

    Segments are fetched from the server the ledger URL names (`http://HOST:PORT/live/...`).
    """
    base = ledger_base.rstrip("/").removesuffix("/sth")
    origin, _, ledger_feed = base.rpartition("/ledger/")
    if ledger_feed != tag.feed:
        return Report(fatal=f"the clip says it is of feed {tag.feed}, the ledger given is {ledger_feed}'s")
    if len(tag.seqs) > MAX_SEGMENTS:
        return Report(fatal=f"the clip note names {len(tag.seqs)} segments (more than {MAX_SEGMENTS})")
    try:
        pinned = fetch_head(fetch, base)
        book = HeadBook(pinned, verify_key, consistency_fetcher(fetch, base))
    except Exception as e:  # noqa: BLE001 - transport, parse or signature: nothing can be checked
        return Report(fatal=f"no trusted tree head at {base}: {type(e).__name__}: {e}")
    report = Report(head=pinned)
    media = f"{origin}/live/{tag.feed}/{tag.rendition}"
    try:
        init = fetch(f"{media}/{init_uri(tag.init) if tag.init else INIT_NAME}")
    except Exception as e:  # noqa: BLE001
        report.fatal = f"cannot fetch the init segment the clip names: {e}"
        return report
    certified: dict[str, list[Certified]] = {"video": [], "audio": []}
    for seq in tag.seqs:
        name = f"{tag.feed}/{tag.rendition}/{seq}"
        segment = _proven_segment(fetch, base, media, book, tag, seq)
        if isinstance(segment, str):
            report.results.append(SegmentResult(name, False, segment))
            continue
        try:
            samples = read_samples(init + segment)
        except SamplesError as e:
            report.results.append(SegmentResult(name, False, f"certified, but not playable with its init: {e}"))
            continue
        report.results.append(SegmentResult(name, True))
        for kind, items in samples.items():
            certified[kind] += [Certified(name, s) for s in items]
    if report.failures:
        report.results.append(SegmentResult(ROW, False, "not compared: a segment the clip names did not verify"))
        return report
    try:
        clip = read_samples(data)
    except SamplesError as e:
        report.results.append(SegmentResult(ROW, False, str(e)))
        return report
    m = match_samples(clip, certified, tag.reencoded)
    report.results.append(SegmentResult(ROW, m.ok, m.reason))
    if m.ok:
        report.notes.append(f"proven: {m.proven[0]} video and {m.proven[1]} audio samples, {m.proven_seconds:.3f} s, "
                            f"byte for byte the certified samples of seqs {tag.first_seq}-{tag.last_seq}")
        if m.uncovered:
            report.notes.append(f"not covered: the first {m.uncovered} video frames ({m.uncovered_seconds:.3f} s), "
                                "encoded anew by --exact")
    return report


def _proven_segment(fetch: Fetch, base: str, media: str, book: HeadBook, tag: ClipTag, seq: int) -> bytes | str:
    """The segment's bytes once proven against the ledger, or the reason it is not."""
    try:
        data = fetch(f"{media}/{seq}.m4s")
    except Exception as e:  # noqa: BLE001
        return f"cannot fetch segment: {e}"
    proof_url = f"{base}/proof/{tag.rendition}/{seq}"
    try:
        try:  # against the pinned head first, as the stream check does
            proof = fetch_json(fetch, f"{proof_url}?tree_size={book.pinned.tree_size}")
        except Exception:  # noqa: BLE001
            proof = fetch_json(fetch, proof_url)
    except Exception as e:  # noqa: BLE001
        return f"no proof: {e}"
    try:
        check_segment(data, proof, book, tag.feed, tag.rendition, seq)
    except SegmentFailure as e:
        return str(e)
    return data


__all__ = ["ClipTagError", "SampleMatch", "clip_tag_of", "match_samples", "verify_clip"]
