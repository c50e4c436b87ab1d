"""ITU-T P.1203 mode 0 input for a browser session: what the model needs from metadata alone
(P.1203.1 mode 0), in the JSON layout of the ITU's reference implementation (`itu-p1203`):

    I11   audio segments: start, duration, bitrate (kbit/s), codec
    I13   video segments: start, duration, bitrate (kbit/s), codec, fps, resolution
    I23   stalling: [media time, duration] pairs; [0, startup] is the initial loading
    IGen  the device (pc | mobile), its display size, the viewing distance

Segments are the ones hls.js loaded, in media order (the parts of one segment together). A
segment's video bitrate is measured: its bytes over its duration, less the audio bitrate when
the rendition carries audio in the same segments (orbitcast's do): `audio_kbps`, which the
playlist does not state, is given by the caller. orbitcast does not run the model.
"""

from __future__ import annotations

from typing import Any

STREAM_ID = 42  # any number; the reference implementation requires one per input
VIEWING_DISTANCE = {"pc": "150cm", "mobile": "50cm"}


def video_codec(codecs: str | None) -> str:
    c = (codecs or "").lower()
    for prefix, name in (("avc", "h264"), ("hvc", "hevc"), ("hev", "hevc"), ("vp09", "vp9"), ("vp9", "vp9"), ("av01", "av1")):
        if c.startswith(prefix):
            return name
    return c or "h264"


def audio_codec(codecs: str | None) -> str | None:
    c = (codecs or "").lower()
    if not c:
        return None
    if c.startswith("mp4a.40.5") or c.startswith("mp4a.40.29"):
        return "heaac"
    if c.startswith("mp4a"):
        return "aaclc"
    if c in ("ac-3", "ec-3"):
        return c.replace("-", "")
    return c


def segments(frags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """hls.js FRAG_LOADED records -> one per segment (sn), in media order: level, start,
    duration, bytes. A whole segment stands for its parts when both were loaded; a part loaded
    twice (again after a switch) counts once, as last loaded."""
    latest: dict[tuple[Any, int], dict[str, Any]] = {}
    for f in sorted(frags, key=lambda f: f["at"]):
        latest[(f["sn"], f["part"])] = f
    by_sn: dict[Any, dict[str, Any]] = {}
    for (sn, part), f in sorted(latest.items(), key=lambda kv: kv[0]):  # a whole one (-1) first
        seg = by_sn.get(sn)
        if seg is None:
            by_sn[sn] = {"level": f["level"], "start": f["start"], "duration": f["duration"],
                         "bytes": int(f["bytes"] or 0), "whole": part < 0}
        elif not seg["whole"]:
            seg["duration"] += f["duration"]
            seg["bytes"] += int(f["bytes"] or 0)
            seg["level"] = f["level"]
    return [by_sn[k] for k in sorted(by_sn)]


def mode0_input(levels: list[dict[str, Any]], frags: list[dict[str, Any]], startup_s: float | None,
                stalls: list[tuple[float, float]], device: str, display: str, audio_kbps: float) -> dict[str, Any]:
    """The P.1203 mode 0 input. `stalls` are (media time at the stall, seconds stalled)."""
    segs = [s for s in segments(frags) if s["duration"] > 0]
    t0 = segs[0]["start"] if segs else 0.0
    video: list[dict[str, Any]] = []
    audio: list[dict[str, Any]] = []
    for s in segs:
        lv = levels[s["level"]] if 0 <= s["level"] < len(levels) else {}
        acodec = audio_codec(lv.get("audioCodec"))
        total_kbps = s["bytes"] * 8 / s["duration"] / 1000
        start = round(s["start"] - t0, 3)
        duration = round(s["duration"], 3)
        video.append({"start": start, "duration": duration,
                      "bitrate": round(max(1.0, total_kbps - (audio_kbps if acodec else 0.0)), 2),
                      "codec": video_codec(lv.get("videoCodec")),
                      "fps": float(lv.get("frameRate") or 0) or None,
                      "resolution": f"{lv.get('width')}x{lv.get('height')}"})
        if acodec:
            audio.append({"start": start, "duration": duration, "bitrate": audio_kbps, "codec": acodec})
    stalling = [[0.0, round(startup_s, 3)]] if startup_s is not None else []
    stalling += [[round(max(0.0, at - t0), 3), round(length, 3)] for at, length in stalls]
    return {
        "I11": {"segments": audio, "streamId": STREAM_ID},
        "I13": {"segments": video, "streamId": STREAM_ID},
        "I23": {"stalling": stalling, "streamId": STREAM_ID},
        "IGen": {"device": device, "displaySize": display, "viewingDistance": VIEWING_DISTANCE.get(device, "150cm")},
    }
