"""Reading fragmented MP4: boxes, tracks, codecs strings, and cutting a growing byte stream into
the init segment and moof+mdat fragments."""

from __future__ import annotations

import io
import random
import re
import struct
from fractions import Fraction

import av
import numpy as np
import pytest

import orbitcast.media.transcode as transcode_mod
from orbitcast.config import LadderConfig, Rung
from orbitcast.media.fmp4 import (Fmp4Error, Fragment, FragmentSplitter, codecs_string, find_box,
                                  fragment_decode_time, iter_boxes, tracks_of)
from orbitcast.media.source import Source
from orbitcast.media.transcode import LiveTranscoder
from orbitcast.media.units import MediaUnit

LAVFI = "lavfi:testsrc2=size=160x120:rate=30,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]"
LADDER = LadderConfig(rungs=(Rung(name="r", width=160, height=120, video_bitrate=150_000),), audio_bitrate=64_000,
                      preset="ultrafast")


def box(typ: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), typ) + payload


class RecordingSplitter(FragmentSplitter):
    """A FragmentSplitter that also keeps every byte the muxer wrote."""

    instances: list["RecordingSplitter"] = []

    def __init__(self) -> None:
        super().__init__()
        self.raw = bytearray()
        self.fragments: list[Fragment] = []
        RecordingSplitter.instances.append(self)

    def write(self, data: bytes) -> int:
        self.raw += data
        return super().write(data)

    def take(self) -> list[Fragment]:
        got = super().take()
        self.fragments += got
        return got


@pytest.fixture(scope="module")
def recorded() -> RecordingSplitter:
    """The exact byte stream the transcoder's muxer writes for ~3 s of a lavfi source."""
    RecordingSplitter.instances = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transcode_mod, "FragmentSplitter", RecordingSplitter)
        src = Source(LAVFI, realtime=False)
        tr = LiveTranscoder("f", LADDER, 2.0, 0.5, src.open())
        batch: list[MediaUnit] = []
        for u in src.units():
            batch.append(u)
            if len(batch) == 5:
                tr.push(batch)
                batch = []
            if u.time >= 3.0:
                break
        tr.push(batch)
        tr.flush()
        src.close()
    (rec,) = RecordingSplitter.instances
    assert rec.init is not None and rec.fragments
    return rec


# -- boxes --------------------------------------------------------------------------------
def test_iter_boxes_plain_large_and_to_end() -> None:
    a = box(b"free", b"abc")
    large = struct.pack(">I4sQ", 1, b"skip", 16 + 5) + b"12345"
    to_end = struct.pack(">I4s", 0, b"mdat") + b"rest of file"
    data = a + large + to_end
    got = list(iter_boxes(data))
    assert got == [
        (b"free", 0, len(a)),
        (b"skip", len(a), len(a) + len(large)),
        (b"mdat", len(a) + len(large), len(data)),
    ]


def test_iter_boxes_stops_at_an_incomplete_box() -> None:
    a = box(b"moof", b"x" * 10)
    b = box(b"mdat", b"y" * 100)
    for cut in range(len(a), len(a) + len(b)):
        assert [t for t, _, _ in iter_boxes(a + b[: cut - len(a)])] == [b"moof"]
    assert [t for t, _, _ in iter_boxes(a + b)] == [b"moof", b"mdat"]
    # an incomplete 64-bit header, too
    assert list(iter_boxes(struct.pack(">I4s", 1, b"mdat") + b"\x00\x00")) == []


def test_iter_boxes_start_end() -> None:
    data = box(b"aaaa") + box(b"bbbb", b"12") + box(b"cccc")
    assert [t for t, _, _ in iter_boxes(data, 8, 18)] == [b"bbbb"]


@pytest.mark.parametrize("size", [2, 4, 7])
def test_invalid_box_size(size: int) -> None:
    with pytest.raises(Fmp4Error, match="invalid size"):
        list(iter_boxes(struct.pack(">I4s", size, b"moov") + b"\x00" * 16))
    # a 64-bit size below its 16-byte header
    with pytest.raises(Fmp4Error, match="invalid size"):
        list(iter_boxes(struct.pack(">I4sQ", 1, b"mdat", 12) + b"\x00" * 16))


def test_find_box_nested() -> None:
    inner = box(b"tfdt", b"\x01" * 4)
    traf = box(b"traf", box(b"tfhd", b"\x00" * 8) + inner)
    data = box(b"styp") + box(b"moof", box(b"mfhd", b"\x00" * 8) + traf) + box(b"mdat")
    found = find_box(data, [b"moof", b"traf", b"tfdt"])
    assert found is not None
    assert data[found[0]:found[1]] == inner
    assert find_box(data, [b"moof", b"tfdt"]) is None
    assert find_box(data, [b"moov"]) is None


def test_tracks_of_needs_moov() -> None:
    with pytest.raises(Fmp4Error, match="moov"):
        tracks_of(box(b"ftyp", b"iso6"))


def test_fragment_decode_time_without_moof() -> None:
    assert fragment_decode_time(box(b"mdat", b"x"), 1) is None


# -- real muxer output ----------------------------------------------------------------------
def test_tracks_of_init(recorded: RecordingSplitter) -> None:
    assert recorded.init is not None
    tracks = tracks_of(recorded.init)
    assert [t.handler for t in tracks] == ["vide", "soun"]
    assert len({t.track_id for t in tracks}) == 2
    video, audio = tracks
    assert video.timescale == 90000
    assert audio.timescale == 48000
    with av.open(io.BytesIO(recorded.init)) as c:
        assert c.streams.video[0].time_base == Fraction(1, video.timescale)
        assert c.streams.audio[0].time_base == Fraction(1, audio.timescale)


def test_codecs_string_of_init(recorded: RecordingSplitter) -> None:
    assert recorded.init is not None
    value = codecs_string(recorded.init)
    m = re.fullmatch(r"avc1\.([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2}),mp4a\.40\.2", value)
    assert m, value
    with av.open(io.BytesIO(recorded.init)) as c:
        cc = c.streams.video[0].codec_context
        extradata = bytes(cc.extradata)
        assert int(m.group(1), 16) == extradata[1]  # profile_idc
        assert int(m.group(3), 16) == extradata[3]  # level_idc
        assert extradata[1] in (66, 77, 100)  # Baseline, Main, High


def test_the_init_ends_where_the_first_moof_begins(recorded: RecordingSplitter) -> None:
    assert recorded.init is not None
    assert bytes(recorded.raw).startswith(recorded.init)
    assert bytes(recorded.raw)[len(recorded.init) + 4: len(recorded.init) + 8] == b"moof"


def test_fragments_rebuild_the_stream(recorded: RecordingSplitter) -> None:
    assert recorded.init is not None
    rebuilt = recorded.init + b"".join(f.data for f in recorded.fragments)
    assert rebuilt == bytes(recorded.raw)  # skip_trailer: nothing but init and fragments
    for f in recorded.fragments:
        assert [t for t, _, _ in iter_boxes(f.data)] == [b"moof", b"mdat"]


def test_fragment_times_and_independence(recorded: RecordingSplitter) -> None:
    assert recorded.init is not None
    video = next(t for t in tracks_of(recorded.init) if t.handler == "vide")
    times = [f.time for f in recorded.fragments]
    assert times == sorted(times)
    assert times[0] == 0.0
    for f in recorded.fragments:
        dt = fragment_decode_time(f.data, video.track_id)
        assert dt is not None and dt / video.timescale == f.time
        # a part at a segment boundary (every 2 s) starts with a keyframe; the others do not
        at_boundary = abs(f.time / 2.0 - round(f.time / 2.0)) < 1e-6
        assert f.independent == at_boundary, f.time
        assert _first_video_packet_is_key(recorded.init, f.data) == f.independent
    assert fragment_decode_time(recorded.fragments[0].data, 99) is None
    assert [round(t, 6) for t in times[:6]] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def _first_video_packet_is_key(init: bytes, frag: bytes) -> bool:
    with av.open(io.BytesIO(init + frag)) as c:
        for packet in c.demux(video=0):
            if packet.size:
                return bool(packet.is_keyframe)
    raise AssertionError("no video packet in fragment")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_splitter_on_small_random_chunks(recorded: RecordingSplitter, seed: int) -> None:
    rng = random.Random(seed)
    raw = bytes(recorded.raw)
    s = FragmentSplitter()
    got: list[Fragment] = []
    i = 0
    while i < len(raw):
        n = rng.randint(1, 700)
        assert s.write(raw[i:i + n]) == len(raw[i:i + n])
        i += n
        got += s.take()
        if s.init is None:
            assert not got
    assert s.init == recorded.init
    assert got == recorded.fragments
    assert s.take() == []


def test_splitter_byte_by_byte_at_the_start(recorded: RecordingSplitter) -> None:
    raw = bytes(recorded.raw)
    s = FragmentSplitter()
    assert recorded.init is not None
    end = len(recorded.init) + len(recorded.fragments[0].data)
    got: list[Fragment] = []
    for i in range(end):
        s.write(raw[i:i + 1])
        got += s.take()
        assert (s.init is not None) == (i + 1 >= len(recorded.init))
    assert got == recorded.fragments[:1]


def test_splitter_all_at_once(recorded: RecordingSplitter) -> None:
    s = FragmentSplitter()
    s.write(bytes(recorded.raw))
    assert s.take() == recorded.fragments


def test_splitter_skips_boxes_between_fragments(recorded: RecordingSplitter) -> None:
    assert recorded.init is not None
    s = FragmentSplitter()
    s.write(recorded.init)
    s.write(box(b"styp", b"msdhmsix"))
    s.write(recorded.fragments[0].data)
    s.write(box(b"free", b"pad"))
    s.write(recorded.fragments[1].data)
    assert s.take() == recorded.fragments[:2]


def test_init_without_video_track() -> None:
    s = FragmentSplitter()
    with av.open(s, "w", format="mp4", options={"movflags": "empty_moov+default_base_moof+frag_keyframe"}) as out:
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        f = av.AudioFrame.from_ndarray(np.zeros((2, 1024), dtype=np.float32), format="fltp", layout="stereo")
        f.sample_rate, f.pts, f.time_base = 48000, 0, Fraction(1, 48000)
        out.mux(a.encode(f))
        out.mux(a.encode(None))
    with pytest.raises(Fmp4Error, match="no video track"):
        s.take()
