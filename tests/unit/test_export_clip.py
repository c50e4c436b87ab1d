"""`orbitcast.export`: a clip cut from the time-shift presentation of a real (lavfi, transcoded)
feed, checked as a user would: ffprobe's duration and picture size, ffmpeg decoding it, and
the note it carries."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from orbitcast.export import ClipTag, ExportError, export_clip
from orbitcast.media.samples import read_comment, read_samples

from tests.unit.clip_fixtures import BASE, FEED, FPS, ClipEdge, at

FRAME = 1 / FPS


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries",
                          "format=duration:stream=codec_type,width,height", str(path)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def decodes(path: Path) -> None:
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


@pytest.mark.parametrize("offset", [0.0, 0.4, 0.97])
def test_the_clip_starts_at_the_keyframe_before_the_start_and_ends_at_the_end(tmp_path: Path, offset: float) -> None:
    edge = ClipEdge()
    start, end = at(2, offset, edge), at(5, 0.3, edge)
    result = export_clip(BASE, FEED, start, end, tmp_path / "clip.mp4", edge.fetch)
    # segments start with a keyframe (the only ones the live encoder makes): the clip starts at seq 2's
    assert result.cut.start_wall == edge.pdt(2)
    info = probe(tmp_path / "clip.mp4")
    expected = (end - edge.pdt(2)).total_seconds()
    assert abs(float(info["format"]["duration"]) - expected) <= FRAME, (info, expected)
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    decodes(tmp_path / "clip.mp4")
    tag = ClipTag.parse(read_comment((tmp_path / "clip.mp4").read_bytes()))
    assert tag is not None and (tag.feed, tag.rendition, tag.first_seq, tag.last_seq) == (FEED, "hi", 2, 5)


def test_the_samples_are_the_segments_samples(tmp_path: Path) -> None:
    edge = ClipEdge()
    export_clip(BASE, FEED, at(1, 0.5, edge), at(3, 0.5, edge), tmp_path / "clip.mp4", edge.fetch)
    clip = read_samples((tmp_path / "clip.mp4").read_bytes())
    init = edge.inits["hi"]
    source = [s.data for seq in (1, 2, 3) for s in read_samples(init + edge.data[("hi", seq)])["video"]]
    assert [s.data for s in clip["video"]] == source[:len(clip["video"])]
    assert len(clip["video"]) == round(2.5 * FPS)
    assert clip["video"][0].key and clip["video"][0].pts == 0


def test_the_default_rung_is_the_highest_and_another_can_be_asked_for(tmp_path: Path) -> None:
    edge = ClipEdge()
    export_clip(BASE, FEED, at(1, 0, edge), at(3, 0, edge), tmp_path / "hi.mp4", edge.fetch)
    export_clip(BASE, FEED, at(1, 0, edge), at(3, 0, edge), tmp_path / "lo.mp4", edge.fetch, rendition="lo")
    sizes = {p: next(s for s in probe(tmp_path / f"{p}.mp4")["streams"] if s["codec_type"] == "video")
             for p in ("hi", "lo")}
    assert (sizes["hi"]["width"], sizes["lo"]["width"]) == (320, 160)
    with pytest.raises(ExportError, match="no rendition 'mid'; iss has hi, lo") as err:
        export_clip(BASE, FEED, at(1, 0, edge), at(3, 0, edge), tmp_path / "x.mp4", edge.fetch, rendition="mid")
    assert err.value.usage


def test_ranges_with_no_media_or_reversed_are_refused_and_write_nothing(tmp_path: Path) -> None:
    edge = ClipEdge()
    out = tmp_path / "clip.mp4"
    before = edge.pdt(0) - timedelta(hours=1)
    with pytest.raises(ExportError, match="no media in that range") as err:
        export_clip(BASE, FEED, before, before + timedelta(seconds=4), out, edge.fetch)
    assert err.value.usage
    with pytest.raises(ExportError, match="after"):
        export_clip(BASE, FEED, at(3, 0, edge), at(2, 0, edge), out, edge.fetch)
    with pytest.raises(ExportError, match="feed"):
        export_clip(BASE, "../etc", at(2, 0, edge), at(3, 0, edge), out, edge.fetch)
    assert list(tmp_path.iterdir()) == []


def test_a_range_across_a_missing_segment_is_refused(tmp_path: Path) -> None:
    edge = ClipEdge()
    del edge.segments[("hi", 3)]  # the time-shift playlist lists it as EXT-X-GAP
    with pytest.raises(ExportError, match="segment 3 is missing"):
        export_clip(BASE, FEED, at(2, 0, edge), at(5, 0, edge), tmp_path / "clip.mp4", edge.fetch)
    assert not (tmp_path / "clip.mp4").exists()
    export_clip(BASE, FEED, at(4, 0, edge), at(5, 0.5, edge), tmp_path / "after.mp4", edge.fetch)  # after it: fine


def test_an_unreachable_server_is_not_a_usage_error(tmp_path: Path) -> None:
    def down(url: str) -> bytes:
        raise ConnectionRefusedError(f"cannot reach {url}")

    edge = ClipEdge()
    with pytest.raises(ExportError, match="cannot reach") as err:
        export_clip(BASE, FEED, at(2, 0, edge), at(3, 0, edge), tmp_path / "clip.mp4", down)
    assert not err.value.usage


@pytest.mark.parametrize("comment", [
    'orbitcast-clip {"v":1,"feed":"../x","rendition":"hi","first_seq":1,"last_seq":2,"init":"","start":"","end":""}',
    'orbitcast-clip {"v":1,"feed":"iss","rendition":"hi","first_seq":3,"last_seq":2,"init":"","start":"","end":""}',
    'orbitcast-clip {"v":2}',
    "orbitcast-clip not json",
])
def test_malformed_clip_notes_are_refused(comment: str) -> None:
    with pytest.raises(ValueError, match="clip note"):
        ClipTag.parse(comment)


def test_a_clip_note_round_trips_and_other_comments_are_no_note() -> None:
    tag = ClipTag("iss", "720p", 4, 9, "0123456789ab", "2025-01-31T12:00:00.000Z", "2025-01-31T12:00:05.000Z")
    assert ClipTag.parse(tag.comment()) == tag and list(tag.seqs) == [4, 5, 6, 7, 8, 9]
    assert ClipTag.parse("holiday video") is None and ClipTag.parse(None) is None


# -- --exact ----------------------------------------------------------------------------------
def frames(data: bytes) -> list:
    import io

    import av

    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_exact_starts_at_the_start_and_copies_everything_from_the_next_keyframe(tmp_path: Path) -> None:
    edge = ClipEdge()
    start, end = at(2, 0.4, edge), at(5, 0.3, edge)
    out = tmp_path / "clip.mp4"
    result = export_clip(BASE, FEED, start, end, out, edge.fetch, exact=True)
    assert abs((result.cut.start_wall - start).total_seconds()) < FRAME
    info = probe(out)
    assert abs(float(info["format"]["duration"]) - (end - start).total_seconds()) <= FRAME, info
    decodes(out)
    tag = ClipTag.parse(read_comment(out.read_bytes()))
    assert tag is not None and tag.reencoded == round(0.6 * FPS)  # 2.4 s up to the keyframe at 3 s
    # From the keyframe on, the clip decodes to the very pictures the segments decode to: the
    # new frames' parameter sets did not disturb the copied ones.
    clip = frames(out.read_bytes())
    source = frames(edge.inits["hi"] + b"".join(edge.data[("hi", s)] for s in (2, 3, 4, 5)))
    skipped = round(0.4 * FPS)
    assert len(clip) == len(source[skipped:round(3.3 * FPS)])
    for k in range(tag.reencoded, len(clip)):
        assert (clip[k] == source[skipped + k]).all(), k
    # and the new ones are the same pictures, encoded again (testsrc2: a small difference)
    assert abs(clip[0].astype(float) - source[skipped].astype(float)).mean() < 4


def test_exact_on_a_keyframe_encodes_nothing(tmp_path: Path) -> None:
    edge = ClipEdge()
    result = export_clip(BASE, FEED, at(2, 0, edge), at(4, 0, edge), tmp_path / "clip.mp4", edge.fetch, exact=True)
    assert result.cut.reencoded == 0 and result.cut.start_wall == edge.pdt(2)


def test_exact_refuses_a_range_that_ends_before_the_next_keyframe(tmp_path: Path) -> None:
    edge = ClipEdge()
    with pytest.raises(ExportError, match="ends before the next keyframe"):
        export_clip(BASE, FEED, at(2, 0.2, edge), at(2, 0.8, edge), tmp_path / "clip.mp4", edge.fetch, exact=True)
    assert list(tmp_path.iterdir()) == []


def test_annex_b_becomes_length_prefixed_nal_units() -> None:
    from orbitcast.export.exact import to_length_prefixed

    stream = b"\x00\x00\x00\x01\x67\xaa\xbb\x00\x00\x01\x68\xcc\x00\x00\x00\x01\x65\x01\x02\x03"
    assert to_length_prefixed(stream, 4) == (b"\x00\x00\x00\x03\x67\xaa\xbb" + b"\x00\x00\x00\x02\x68\xcc"
                                             + b"\x00\x00\x00\x04\x65\x01\x02\x03")
