"""`--exact`: a clip that starts at the instant asked for, not at the keyframe before it.

Only the frames from that instant up to the next keyframe are decoded and encoded anew; from
the next keyframe on, every sample is copied as `cut` copies it, so the verifier proves all but
those first frames (the clip's note says how many, and the report names them as not covered).

The new frames go into the same H.264 track as the copied ones, whose parameter sets (SPS/PPS,
id 0) are in the track's `avcC`. The encoder writes its own parameter sets in band with its
first frame, under id 1 (x264's `sps-id`), so a decoder keeps both: the new frames use set 1,
the copied ones still find set 0, and no copied byte changes. Annex B output is rewritten as
length-prefixed NAL units (the avcC's length size), as MP4 stores H.264.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from fractions import Fraction

import av
from av.video.frame import PictureType

from ..media.samples import Sample
from .cut import Cut, CutError

_START_CODE = re.compile(b"\x00\x00\x01")
NEW_SPS_ID = 1  # the copied frames' parameter sets are id 0: the encoder's must not replace them


def _nal_units(annexb: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (3- or 4-byte start codes)."""
    starts = [m.end() for m in _START_CODE.finditer(annexb)]
    units = []
    for i, s in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(annexb)
        unit = annexb[s:end]
        units.append(unit.rstrip(b"\x00") if i + 1 < len(starts) else unit)  # a 4-byte code's leading zero
    return [u for u in units if u]


def to_length_prefixed(annexb: bytes, length_size: int) -> bytes:
    return b"".join(len(u).to_bytes(length_size, "big") + u for u in _nal_units(annexb))


def avcc_length_size(extradata: bytes | None) -> int:
    """NAL length size of an `avcC` record; `CutError` when the track is not avcC H.264."""
    if not extradata or len(extradata) < 7 or extradata[0] != 1:
        raise CutError("--exact needs H.264 video stored with an avcC record")
    return (extradata[4] & 0x3) + 1


def exact_start(cut: Cut, from_media: Fraction, extradata: bytes | None, time_base: Fraction) -> Cut:
    """`cut` starting at the first frame at or after `from_media`: the frames before the next
    keyframe encoded anew, the rest as they were."""
    video = cut.video
    first = next((i for i, (_, s) in enumerate(video) if s.pts >= from_media), None)
    if first is None:
        raise CutError("--exact: no frame in the range")
    if first == 0:
        return cut  # the range starts on a keyframe: nothing to encode
    following = next((i for i in range(1, len(video)) if video[i][1].key), None)
    if following is None:
        raise CutError("--exact: the range ends before the next keyframe, so no frame would be copied (and "
                       "proven); widen the range or leave out --exact")
    if first >= following:  # the start falls between the last frame before a keyframe and it
        return _from(cut, following, 0)
    length_size = avcc_length_size(extradata)
    fresh = _reencode([s for _, s in video[:following]], video[first][1].pts, extradata, time_base, length_size)
    seq = video[first][0]
    head = [(seq, s) for s in fresh]
    return _from(replace(cut, video=head + video[following:]), 0, len(head))


def _from(cut: Cut, index: int, reencoded: int) -> Cut:
    """`cut` from video sample `index` on, audio from its time on."""
    video = cut.video[index:]
    start = video[0][1].pts
    audio = [(seq, s) for seq, s in cut.audio if s.pts >= start]
    wall = cut.start_wall + timedelta(microseconds=round((start - cut.start) * 1_000_000))
    return Cut(video, audio, start, cut.end, wall, reencoded)


def _reencode(gop: list[Sample], keep_from: Fraction, extradata: bytes | None, time_base: Fraction,
              length_size: int) -> list[Sample]:
    """Decode a run of samples that starts with a keyframe; encode the frames from `keep_from`."""
    try:
        dec = av.CodecContext.create("h264", "r")
        dec.extradata = extradata
        frames = []
        for s in gop:
            pkt = av.Packet(s.data)
            pkt.time_base = time_base
            pkt.pts, pkt.dts = round(s.pts / time_base), round(s.dts / time_base)
            frames += dec.decode(pkt)
        frames += dec.decode(None)
        keep = [f for f in frames if f.pts is not None and f.pts * time_base >= keep_from]
        if not keep:
            raise CutError("--exact: the frames before the next keyframe did not decode")
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = keep[0].width, keep[0].height, "yuv420p"
        enc.time_base = time_base
        enc.options = {"preset": "veryfast", "crf": "16", "tune": "zerolatency", "forced-idr": "1",
                       "x264-params": f"sps-id={NEW_SPS_ID}:bframes=0:keyint=infinite:scenecut=0"}
        out: list[Sample] = []
        durations = {round(s.pts / time_base): s.duration for s in gop}
        packets = []
        for f in keep:
            f.pict_type = PictureType.NONE  # the decoder's I/P marks: the encoder chooses (its first is an IDR)
            f.time_base = time_base
            packets += enc.encode(f)
        packets += enc.encode(None)
        for p in packets:
            pts = p.pts * time_base
            dts = (p.dts if p.dts is not None else p.pts) * time_base
            out.append(Sample(to_length_prefixed(bytes(p), length_size), pts, dts,
                              durations.get(p.pts, Fraction(0)), bool(p.is_keyframe)))
        return out
    except av.FFmpegError as e:
        raise CutError(f"--exact: cannot encode the first frames: {e}") from None
