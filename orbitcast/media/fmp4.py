"""Reading the fragmented MP4 that PyAV's mp4 muxer writes: where the init segment ends,
where each fragment (moof+mdat, an LL-HLS part) ends, and at what media time it starts.

Only box headers and a few fields are read (tkhd/mdhd/tfhd/tfdt/avcC); writing is left to
libavformat's muxer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf", b"mvex", b"edts"}


class Fmp4Error(ValueError):
    """The bytes are not the fragmented MP4 we expect."""


def iter_boxes(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset, end) of each complete box in data[start:end]; stops at an incomplete one."""
    end = len(data) if end is None else end
    i = start
    while i + 8 <= end:
        size, typ = struct.unpack_from(">I4s", data, i)
        header = 8
        if size == 1:
            if i + 16 > end:
                return
            size = struct.unpack_from(">Q", data, i + 8)[0]
            header = 16
        elif size == 0:
            size = end - i  # box extends to the end
        if size < header:
            raise Fmp4Error(f"box {typ!r} at {i} has invalid size {size}")
        if i + size > end:
            return
        yield typ, i, i + size
        i += size


def find_box(data: bytes | memoryview, path: list[bytes], start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """Offsets of the first box along a path of nested container boxes."""
    for typ, s, e in iter_boxes(data, start, end):
        if typ == path[0]:
            if len(path) == 1:
                return s, e
            found = find_box(data, path[1:], s + 8, e)
            if found:
                return found
    return None


@dataclass(frozen=True)
class TrackInfo:
    track_id: int
    handler: str  # 'vide' or 'soun'
    timescale: int


def tracks_of(init: bytes) -> list[TrackInfo]:
    moov = find_box(init, [b"moov"])
    if moov is None:
        raise Fmp4Error("no moov box in init segment")
    out = []
    for typ, s, e in iter_boxes(init, moov[0] + 8, moov[1]):
        if typ != b"trak":
            continue
        tkhd = find_box(init, [b"tkhd"], s + 8, e)
        mdhd = find_box(init, [b"mdia", b"mdhd"], s + 8, e)
        hdlr = find_box(init, [b"mdia", b"hdlr"], s + 8, e)
        if not (tkhd and mdhd and hdlr):
            raise Fmp4Error("incomplete trak box")
        v = init[tkhd[0] + 8]
        track_id = struct.unpack_from(">I", init, tkhd[0] + (20 if v == 0 else 28))[0]
        v = init[mdhd[0] + 8]
        timescale = struct.unpack_from(">I", init, mdhd[0] + (20 if v == 0 else 28))[0]
        handler = init[hdlr[0] + 16: hdlr[0] + 20].decode("latin-1")
        out.append(TrackInfo(track_id, handler, timescale))
    return out


def _track_fragment(frag: bytes | memoryview, track_id: int) -> tuple[int, int] | None:
    """Offsets of the traf box of `track_id` in a fragment's moof."""
    moof = find_box(frag, [b"moof"])
    if moof is None:
        return None
    for typ, s, e in iter_boxes(frag, moof[0] + 8, moof[1]):
        if typ != b"traf":
            continue
        tfhd = find_box(frag, [b"tfhd"], s + 8, e)
        if tfhd and struct.unpack_from(">I", frag, tfhd[0] + 12)[0] == track_id:
            return s, e
    return None


def fragment_decode_time(frag: bytes | memoryview, track_id: int) -> int | None:
    """baseMediaDecodeTime of a track in a moof, in that track's timescale."""
    traf = _track_fragment(frag, track_id)
    tfdt = find_box(frag, [b"tfdt"], traf[0] + 8, traf[1]) if traf else None
    if tfdt is None:
        return None
    if frag[tfdt[0] + 8] == 1:
        return struct.unpack_from(">Q", frag, tfdt[0] + 12)[0]
    return struct.unpack_from(">I", frag, tfdt[0] + 12)[0]


def fragment_duration(frag: bytes | memoryview, track_id: int) -> int | None:
    """Sum of a track's sample durations in a moof (its timescale): how long the fragment
    plays, known as soon as the fragment is, unlike the start of the next one."""
    traf = _track_fragment(frag, track_id)
    if traf is None:
        return None
    tfhd = find_box(frag, [b"tfhd"], traf[0] + 8, traf[1])
    if tfhd is None:
        return None
    tf_flags = int.from_bytes(frag[tfhd[0] + 9: tfhd[0] + 12], "big")
    default = None
    pos = tfhd[0] + 16  # full box header + track_ID
    for bit, size in ((0x1, 8), (0x2, 4)):
        if tf_flags & bit:
            pos += size
    if tf_flags & 0x8:
        default = struct.unpack_from(">I", frag, pos)[0]
    total = 0
    for typ, s, e in iter_boxes(frag, traf[0] + 8, traf[1]):
        if typ != b"trun":
            continue
        tr_flags = int.from_bytes(frag[s + 9: s + 12], "big")
        count = struct.unpack_from(">I", frag, s + 12)[0]
        pos = s + 16 + (4 if tr_flags & 0x1 else 0) + (4 if tr_flags & 0x4 else 0)
        if not tr_flags & 0x100:
            if default is None:
                raise Fmp4Error("trun without sample durations and no default in tfhd")
            total += default * count
            continue
        entry = 4 * sum(1 for bit in (0x100, 0x200, 0x400, 0x800) if tr_flags & bit)
        for i in range(count):
            total += struct.unpack_from(">I", frag, pos + i * entry)[0]
    return total


def codecs_string(init: bytes) -> str:
    """RFC 6381 CODECS value for the tracks in an init segment (avc1.PPCCLL, mp4a.40.2)."""
    codecs = []
    avcc = find_box(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    if avcc:
        # stsd: full box header (12) + entry count (4), then the sample entry boxes.
        for typ, s, e in iter_boxes(init, avcc[0] + 16, avcc[1]):
            if typ in (b"avc1", b"avc3"):
                # VisualSampleEntry: 8 header + 78 bytes of fields, then child boxes.
                cfg = find_box(init, [b"avcC"], s + 86, e)
                if cfg:
                    p, c, lv = init[cfg[0] + 9], init[cfg[0] + 10], init[cfg[0] + 11]
                    codecs.append(f"{typ.decode()}.{p:02x}{c:02x}{lv:02x}")
    for t in tracks_of(init):
        if t.handler == "soun":
            codecs.append("mp4a.40.2")
    return ",".join(codecs)


@dataclass(frozen=True)
class Fragment:
    data: bytes
    time: float  # decode time of the video track at the fragment's start, seconds
    independent: bool  # starts with a keyframe
    duration: float = 0.0  # of the video track's samples in it, seconds


class FragmentSplitter:
    """Cuts a growing fMP4 byte stream into the init segment and whole moof+mdat fragments."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.init: bytes | None = None
        self._video: TrackInfo | None = None
        self._held = b""  # fragments without pictures, joined to the next one that has

    def write(self, data: bytes) -> int:
        # PyAV calls this from its muxer with each chunk it writes.
        self._buf += data
        return len(data)

    def take(self) -> list[Fragment]:
        out: list[Fragment] = []
        buf = self._buf
        consumed = 0
        pending_moof: int | None = None
        for typ, s, e in iter_boxes(buf):
            if self.init is None:
                if typ == b"moov":
                    self.init = bytes(buf[:e])
                    self._video = next((t for t in tracks_of(self.init) if t.handler == "vide"), None)
                    if self._video is None:
                        raise Fmp4Error("init segment has no video track")
                    consumed = e
                continue
            if typ == b"moof":
                pending_moof = s
            elif typ == b"mdat" and pending_moof is not None:
                frag = bytes(buf[pending_moof:e])
                assert self._video is not None
                dt = fragment_decode_time(frag, self._video.track_id)
                pending_moof = None
                consumed = e
                if dt is None:
                    # Audio that ran on past a gap in the pictures (or past the last one): the
                    # muxer cuts on any track. A part is placed by its video, and may hold more
                    # than one moof+mdat, so this goes out with the next fragment.
                    self._held += frag
                    continue
                scale = self._video.timescale
                duration = fragment_duration(frag, self._video.track_id) or 0
                sync = _first_sample_is_sync(frag, self._video.track_id)
                out.append(Fragment(self._held + frag, dt / scale, sync, duration / scale))
                self._held = b""
            elif pending_moof is None:
                consumed = e  # styp, sidx, free...: nothing we serve
        del buf[:consumed]
        return out


def _first_sample_is_sync(frag: bytes, track_id: int) -> bool:
    """Whether the track's first sample in this fragment is a sync sample (trun/tfhd flags)."""
    traf = _track_fragment(frag, track_id)
    if traf is None:
        return False
    tfhd = find_box(frag, [b"tfhd"], traf[0] + 8, traf[1])
    trun = find_box(frag, [b"trun"], traf[0] + 8, traf[1])
    if not (tfhd and trun):
        return False
    tr_flags = int.from_bytes(frag[trun[0] + 9: trun[0] + 12], "big")
    pos = trun[0] + 16  # after full box header and sample_count
    if tr_flags & 0x1:
        pos += 4
    if tr_flags & 0x4:  # first_sample_flags present
        flags = struct.unpack_from(">I", frag, pos)[0]
    else:
        if tr_flags & 0x100:
            pos += 4
        if tr_flags & 0x200:
            pos += 4
        flags = struct.unpack_from(">I", frag, pos)[0] if tr_flags & 0x400 else _default_sample_flags(frag, tfhd)
    return not (flags >> 16) & 0x1  # sample_is_non_sync_sample


def _default_sample_flags(frag: bytes, tfhd: tuple[int, int]) -> int:
    tf_flags = int.from_bytes(frag[tfhd[0] + 9: tfhd[0] + 12], "big")
    pos = tfhd[0] + 16
    for bit, size in ((0x1, 8), (0x2, 4), (0x8, 4), (0x10, 4)):
        if tf_flags & bit:
            pos += size
    if tf_flags & 0x20:
        return struct.unpack_from(">I", frag, pos)[0]
    return 0
