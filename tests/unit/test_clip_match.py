"""Proving an exported clip against the ledger (`orbitcast.ledger.clip_match`): the clip's
samples against the certified segments its note names, on the real feed of `clip_fixtures`."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from pathlib import Path

import pytest

from orbitcast.export import export_clip
from orbitcast.ledger.clip_match import Certified, clip_tag_of, match_samples, verify_clip
from orbitcast.media.fmp4 import iter_boxes
from orbitcast.media.samples import Sample, read_samples

from tests.unit.clip_fixtures import BASE, FEED, KEY, ClipEdge, at

LEDGER = f"{BASE}/ledger/{FEED}"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    edge = ClipEdge()
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    export_clip(BASE, FEED, at(2, 0.4, edge), at(5, 0.3, edge), path, edge.fetch)
    return path.read_bytes()


def flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def test_a_clip_verifies_and_the_report_says_what_was_proven(clip: bytes) -> None:
    edge = ClipEdge()
    report = verify_clip(clip, clip_tag_of(clip), LEDGER, edge.fetch, KEY.verify_key)
    assert report.ok, report.table()
    assert [r.segment for r in report.results] == [f"iss/hi/{s}" for s in (2, 3, 4, 5)] + ["clip samples"]
    samples = read_samples(clip)
    assert report.notes == [f"proven: {len(samples['video'])} video and {len(samples['audio'])} audio samples, "
                            f"3.300 s, byte for byte the certified samples of seqs 2-5"]
    # the segments were proven with inclusion proofs under the signed head
    assert any("/ledger/iss/proof/hi/3?tree_size=" in u for u in edge.requests)


@pytest.mark.parametrize("where", [0.0005, 0.25, 0.5, 0.75, 0.9995])
def test_one_byte_changed_in_the_media_data_fails(clip: bytes, where: float) -> None:
    _, start, end = next(b for b in iter_boxes(clip) if b[0] == b"mdat")
    bad = flip(clip, start + 8 + int((end - start - 8) * where))
    report = verify_clip(bad, clip_tag_of(bad), LEDGER, ClipEdge().fetch, KEY.verify_key)
    assert not report.ok
    [failure] = report.failures
    assert failure.segment == "clip samples" and "differs from the certified sample in iss/hi/" in failure.reason


def test_a_changed_segment_on_the_server_fails_as_that_segment(clip: bytes) -> None:
    edge = ClipEdge()
    edge.tamper("hi", 4, at=len(edge.data[("hi", 4)]) // 2)
    report = verify_clip(clip, clip_tag_of(clip), LEDGER, edge.fetch, KEY.verify_key)
    assert [r.segment for r in report.failures] == ["iss/hi/4", "clip samples"], report.table()
    assert "bytes differ from the ledger" in report.failures[0].reason


@pytest.mark.parametrize("change", [
    {"first_seq": 3, "last_seq": 6},  # other segments of the same feed
    {"rendition": "lo"},  # the same seqs of another rung
])
def test_a_note_that_names_other_segments_fails(clip: bytes, change: dict) -> None:
    forged = dataclasses.replace(clip_tag_of(clip), **change)
    report = verify_clip(clip, forged, LEDGER, ClipEdge().fetch, KEY.verify_key)
    assert not report.ok and [r.segment for r in report.failures] == ["clip samples"], report.table()


def test_a_note_for_another_feed_than_the_ledger_is_fatal(clip: bytes) -> None:
    forged = dataclasses.replace(clip_tag_of(clip), feed="mars")
    report = verify_clip(clip, forged, LEDGER, ClipEdge().fetch, KEY.verify_key)
    assert not report.ok and "feed mars" in report.fatal


def test_a_ledger_signed_by_another_key_is_fatal(clip: bytes) -> None:
    from nacl.signing import SigningKey

    other = SigningKey.generate().verify_key
    report = verify_clip(clip, clip_tag_of(clip), LEDGER, ClipEdge().fetch, other)
    assert not report.ok and "no trusted tree head" in report.fatal


# -- the sample comparison on its own -----------------------------------------------------------
def samples(n: int, step: Fraction, t0: Fraction = Fraction(0), tag: str = "v") -> list[Sample]:
    return [Sample(f"{tag}{i}".encode(), t0 + i * step, t0 + i * step, step, i == 0) for i in range(n)]


def certified(items: list[Sample]) -> list[Certified]:
    return [Certified(f"iss/hi/{i // 10}", s) for i, s in enumerate(items)]


VIDEO = samples(40, Fraction(1, 30), Fraction(100))
AUDIO = samples(60, Fraction(1024, 48000), Fraction(100), tag="a")
CERT = {"video": certified(VIDEO), "audio": certified(AUDIO)}


def rebased(items: list[Sample], origin: Fraction) -> list[Sample]:
    return [dataclasses.replace(s, pts=s.pts - origin, dts=s.dts - origin) for s in items]


def test_a_run_of_certified_samples_passes_wherever_it_starts() -> None:
    origin = VIDEO[10].pts
    clip = {"video": rebased(VIDEO[10:30], origin), "audio": rebased(AUDIO[16:40], origin)}
    m = match_samples(clip, CERT)
    assert m.ok and m.proven == (20, 24) and m.uncovered == 0, m


@pytest.mark.parametrize("edit, reason", [
    (lambda v: v[:5] + v[6:], "video sample 5 .* differs"),  # a frame dropped
    (lambda v: v[:5] + [v[6], v[5]] + v[7:], "video sample 5 .* differs"),  # two swapped
    (lambda v: v[:5] + [dataclasses.replace(v[5], pts=v[5].pts + Fraction(1, 30))] + v[6:], "video sample 5 .* timed 33.3 ms"),
    (lambda v: v + [Sample(b"extra", Fraction(5), Fraction(5), Fraction(0), False)], "video sample 20 .* differs"),
])
def test_dropped_reordered_retimed_or_added_samples_fail(edit, reason: str) -> None:
    origin = VIDEO[10].pts
    clip = {"video": edit(rebased(VIDEO[10:30], origin)), "audio": []}
    m = match_samples(clip, CERT)
    assert not m.ok
    assert re.search(reason, m.reason), m.reason


def test_audio_out_of_sync_with_the_video_fails() -> None:
    origin = VIDEO[10].pts
    clip = {"video": rebased(VIDEO[10:30], origin), "audio": rebased(AUDIO[16:40], origin - Fraction(1, 10))}
    m = match_samples(clip, CERT)
    assert not m.ok and "audio sample 0" in m.reason


def test_only_the_re_encoded_frames_the_note_declares_may_be_uncovered() -> None:
    origin = VIDEO[10].pts
    fresh = [dataclasses.replace(s, data=b"re-encoded" + s.data) for s in rebased(VIDEO[10:13], origin)]
    clip = {"video": fresh + rebased(VIDEO[13:30], origin), "audio": []}
    m = match_samples(clip, CERT, reencoded=3)
    assert m.ok and m.uncovered == 3 and m.proven == (17, 0) and abs(m.uncovered_seconds - 0.1) < 1e-9
    assert not match_samples(clip, CERT, reencoded=2).ok
    assert not match_samples(clip, CERT, reencoded=0).ok
    assert not match_samples({"video": fresh, "audio": []}, CERT, reencoded=3).ok  # nothing left to prove


def test_an_exact_clip_verifies_all_but_its_new_first_frames(tmp_path: Path) -> None:
    edge = ClipEdge()
    path = tmp_path / "exact.mp4"
    export_clip(BASE, FEED, at(2, 0.4, edge), at(5, 0.3, edge), path, edge.fetch, exact=True)
    data = path.read_bytes()
    report = verify_clip(data, clip_tag_of(data), LEDGER, edge.fetch, KEY.verify_key)
    assert report.ok, report.table()
    assert report.notes[1] == "not covered: the first 18 video frames (0.600 s), encoded anew by --exact"
    # a note that calls every frame new leaves nothing proven: that is a failure, not a pass
    n = len(read_samples(data)["video"])
    forged = dataclasses.replace(clip_tag_of(data), reencoded=n)
    assert not verify_clip(data, forged, LEDGER, edge.fetch, KEY.verify_key).ok
