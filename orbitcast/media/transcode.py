"""The live transcoder: one per feed. Decode once, scale to every rung, encode H.264 per rung
and AAC once (see audio.py: every rung has an audio track, silent when the source has none),
and mux CMAF fMP4 per rung in fragments of part duration.

A keyframe is forced on the first frame of every segment (seq = floor(time / D)) in every rung,
so segment N of every rung covers the same time span and starts with an IDR frame. The mp4
muxer cuts a fragment at every keyframe and every part duration; `FragmentSplitter` reads them
back. Each fragment is published at once as an LL-HLS part, and fragments are grouped into
segments by the time they start; a segment is complete with the part that reaches its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import TYPE_CHECKING

import av
from av.audio.frame import AudioFrame
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import VideoReformatter

from ..config import LadderConfig, Rung
from ..segment import Part, Segment
from .audio import MAX_AUDIO_LAG, LadderAudio
from .boundaries import HALF_TICK, segment_index
from .deinterlace import Deinterlacer
from . import x264
from .fmp4 import Fragment, FragmentSplitter, codecs_string
from .overload import OverloadSteps, faster_of
from .signal_health import HOLD_S, NO_SIGNAL, SignalHealth
from .units import FeedStreams, MediaUnit, StreamInfo

if TYPE_CHECKING:
    from ..energy.accounting import FeedEnergy

TIME_BASE = Fraction(1, 90000)


class TranscodeError(RuntimeError):
    """The feed's media cannot be decoded or encoded; the message is the reason."""


def _stream_name(info: StreamInfo) -> str:
    return f"{info.kind} stream {info.index}"


def _decoder(info: StreamInfo) -> av.CodecContext:
    try:
        ctx = av.CodecContext.create(info.codec, "r")
    except (av.error.FFmpegError, ValueError):
        raise TranscodeError(f"{_stream_name(info)}: codec {info.codec!r} cannot be decoded") from None
    if info.extradata:
        ctx.extradata = info.extradata
    if info.kind == "video":
        if info.codec == "rawvideo":
            ctx.width, ctx.height, ctx.pix_fmt = info.width, info.height, info.pix_fmt or "yuv420p"
    else:
        # Compressed audio says its rate and layout in every frame; a live source probed
        # before its first audio packet knows neither (rate 0, "0 channels"). PCM needs them.
        if info.sample_rate:
            ctx.sample_rate = info.sample_rate
        if info.layout and not info.layout.startswith("0 "):
            ctx.layout = info.layout
        if info.sample_format and info.codec.startswith("pcm_"):
            ctx.format = info.sample_format
    try:
        ctx.open()
    except (av.error.FFmpegError, ValueError) as err:
        raise TranscodeError(f"{_stream_name(info)}: codec {info.codec!r} cannot be decoded: {_why(err)}") from None
    return ctx


def _why(err: BaseException) -> str:
    """An FFmpeg error as a person reads it: its text, without errno or the file name."""
    if isinstance(err, av.error.FFmpegError) and err.strerror:
        return str(err.strerror)
    return str(err)


def _packet(unit: MediaUnit) -> av.Packet:
    pkt = av.Packet(unit.data)
    pkt.pts = round(unit.time * 90000)
    pkt.time_base = TIME_BASE
    return pkt


@dataclass
class _Pending:
    """Parts of the segment a rung is still filling."""

    seq: int
    start: float
    parts: list[bytes] = field(default_factory=list)


class _RungOutput:
    def __init__(self, rung: Rung, fps: float, part_duration: float, preset: str, audio: av.AudioCodecContext,
                 audio_from: float | None = None, faster: str | None = None) -> None:
        self.rung = rung
        self.faster = faster  # the faster preset it runs on (same stream headers: x264.py), or None
        self.reformatter = VideoReformatter()
        # A rung brought back mid-stream (None: made from the start) starts at a segment's first
        # picture: sound from before it belongs to the segment before, which it did not make. A
        # rung on to another preset starts where its old encoder's sound ended (_apply_ladder).
        self.audio_from = audio_from
        self._sound_end: tuple[int, Fraction] | None = None  # (pts + duration, time base) of its newest sound
        self.splitter = FragmentSplitter()
        self.container = av.open(
            self.splitter, "w", format="mp4",
            options={
                # empty_moov+frag_*: fragmented MP4 from the first byte (an init segment, then
                # moof+mdat pairs). frag_discont+use_editlist=0 keeps the feed's absolute media
                # time in tfdt, so every rung and every later transcoder share one timeline.
                "movflags": "empty_moov+default_base_moof+frag_keyframe+frag_discont+skip_trailer+cmaf",
                "frag_duration": str(round(part_duration * 1_000_000)),
                "use_editlist": "0",
            },
        )
        vs = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = rung.width, rung.height, "yuv420p"
        vs.bit_rate = rung.video_bitrate
        vs.codec_context.time_base = TIME_BASE
        vs.options = x264.faster_options(rung, preset, faster) if faster else x264.options(rung, preset)
        self.video = vs
        # The same AAC packets go into every rung; this stream's own encoder is only opened
        # so that the muxer has codec parameters identical to the shared encoder's.
        a = self.container.add_stream("aac", rate=audio.sample_rate)
        a.layout = audio.layout.name
        a.bit_rate = audio.bit_rate
        a.codec_context.time_base = audio.time_base
        self.audio = a
        self.pending: _Pending | None = None
        self.last_seq: int | None = None  # newest segment finished
        self.codecs: str | None = None

    def mux_video(self, frame: VideoFrame) -> None:
        self.container.mux(self.video.encode(frame))

    def mux_audio(self, packets: Iterable[av.Packet]) -> None:
        for src in packets:
            if self.audio_from is not None and src.pts is not None and float(src.pts * src.time_base) < self.audio_from - HALF_TICK:
                continue
            pkt = av.Packet(bytes(src))
            pkt.pts, pkt.dts, pkt.time_base = src.pts, src.dts, src.time_base
            pkt.duration = src.duration
            pkt.stream = self.audio
            self.container.mux(pkt)
            if src.pts is not None and src.duration:
                self._sound_end = (src.pts + src.duration, src.time_base)  # per packet: no arithmetic

    @property
    def audio_end(self) -> float | None:
        """Where the sound it was given ends, seconds."""
        return None if self._sound_end is None else float(self._sound_end[0] * self._sound_end[1])

    def finish(self) -> None:
        self.container.mux(self.video.encode(None))
        self.container.close()


@dataclass(frozen=True)
class _Ask:
    """A ladder asked for (`set_ladder`)."""

    rungs: tuple[str, ...]
    fps: float | None
    fast: frozenset[str]
    faster: str | None


def _frame_gap(source_fps: float, out_fps: float) -> float:
    """Pictures closer than this to the last one kept are dropped: half a source frame at the
    source's rate; at a lower rate, one output frame less half a source frame (so that 30 fps
    keeps every second picture at 15)."""
    if out_fps >= source_fps:
        return 0.5 / source_fps
    return 1.0 / out_fps - 0.5 / source_fps


class LiveTranscoder:
    """Stateful streaming transcoder of one feed; `push` media units, get parts and segments."""

    def __init__(
        self,
        feed: str,
        ladder: LadderConfig,
        segment_duration: float,
        part_duration: float,
        streams: FeedStreams,
        *,
        analyse: bool = True,
        signal_hold: float = HOLD_S,
        frame_tap: Callable[[VideoFrame, float, float], None] | None = None,
        energy: "FeedEnergy | None" = None,
        overload: OverloadSteps | None = None,
        clock: Callable[[], float] = time.time,
        parts_from_seq: int | None = None,
    ) -> None:
        self.feed = feed
        self.ladder = ladder
        self.segment_duration = segment_duration
        self.part_duration = part_duration
        self.fps = float(ladder.fps or streams.video.fps or 30.0)
        self.streams = streams
        self._vdec = _decoder(streams.video)
        self._adec = _decoder(streams.audio) if streams.audio else None
        self._audio = LadderAudio(ladder.audio_bitrate)
        self._outputs = [_RungOutput(r, self.fps, part_duration, ladder.preset, self._audio.encoder) for r in ladder.rungs]
        # The ladder in force (the energy plan may drop rungs and lower the frame rate: `set_ladder`),
        # what was asked for, and the ladder of each seq still being made (its parts say it).
        self._asked: _Ask | None = None
        self._out_fps = self.fps
        self._seq_ladder: dict[int, tuple[str, ...]] = {}
        self._retired: list[Part | Segment] = []  # what dropped rungs finished, for the next collect
        self._deinterlace = Deinterlacer(TIME_BASE)  # only interlaced pictures enter it
        self._current_seq: int | None = None
        self._capture_offset = 0.0  # wall clock minus media time, from the newest unit
        self._pdt: dict[int, float] = {}  # seq -> capture time of its first frame
        self._last_video_time: float | None = None
        self._min_frame_gap = _frame_gap(self.fps, self.fps)
        # Black, frozen and silent states of the input (never of the slate: `analyse` False).
        self._signal = SignalHealth(signal_hold)
        self._signal.reset(has_audio=streams.audio is not None)
        self._analyse = analyse
        # Sampled input pictures for the analysis stage (orbitcast/analysis/tap.py): called
        # with (picture, media time, capture time); it must return at once.
        self._frame_tap = frame_tap
        # Energy accounting (orbitcast/energy/accounting.py): the CPU time of each push, and
        # joules on every segment it completes.
        self.energy = energy
        # Faster presets while the encoders cannot keep pace with the wall clock (overload.py):
        # `clock` is the wall clock the units' capture times are on.
        self.overload = overload
        self.clock = clock
        # Seqs below it go out as whole segments only. A transcoder that takes a feed over (its
        # member died) makes again the seqs since the last one finished, and the dead encoder's
        # parts of them may already be listed: parts of two encoders in one segment do not
        # decode, and the listing of a part can never be taken back.
        self.parts_from_seq = parts_from_seq

    @property
    def init_segments(self) -> dict[str, bytes]:
        return {o.rung.name: o.splitter.init for o in self._outputs if o.splitter.init is not None}

    @property
    def published_through(self) -> int | None:
        """The highest seq finished in every rung made (None before the first). A rung brought
        back has finished nothing yet: it does not hold the others back."""
        done = []
        for o in self._outputs:
            if o.last_seq is not None:
                done.append(o.last_seq)
            elif o.audio_from is None:  # made from the start, and nothing finished yet
                return None
        return min(done) if done else None

    @property
    def resume_point(self) -> tuple[float, int] | None:
        """(where the media it was given ends, the input's generation), for a feed whose reader
        starts again (FeedRunner's `resume`); None before the first picture."""
        if self._last_video_time is None:
            return None
        return self._last_video_time + 1.0 / self.fps, self.streams.generation

    @property
    def ladder_now(self) -> tuple[str, ...]:
        """The rungs made now, in the ladder's order."""
        return tuple(o.rung.name for o in self._outputs)

    def set_ladder(self, rungs: Iterable[str] | None, fps: float | None = None, fast: Iterable[str] = (),
                   faster_preset: str | None = None) -> None:
        """Make only `rungs` (None: every configured rung) at `fps` (None: the ladder's own), the
        rungs of `fast` on `faster_preset`, from the next segment boundary on, in every rung at
        once: a dropped rung's encoder stops after the segment it is in, one brought back (or
        moved to another preset) starts with the next segment's keyframe, so every seq stays one
        time span in every rung that has it. A faster preset that would change a rung's stream
        headers (its init segment) is not used for it (x264.py)."""
        names = tuple(r.name for r in self.ladder.rungs) if rungs is None else tuple(rungs)
        unknown = sorted(set(names) - {r.name for r in self.ladder.rungs})
        if unknown:
            raise ValueError(f"rung(s) {', '.join(unknown)} are not in the ladder")
        if not names:
            raise ValueError("a ladder keeps at least one rung")
        if fps is not None and not 0 < fps:
            raise ValueError(f"frame rate must be > 0, got {fps}")
        quick = frozenset(fast) & set(names) if faster_preset and faster_preset != self.ladder.preset else frozenset()
        self._asked = _Ask(tuple(r.name for r in self.ladder.rungs if r.name in names), fps, quick,
                           faster_preset if quick else None)

    def _faster_for(self, rung: Rung, ask: "_Ask | None", overloaded: str | None) -> str | None:
        """The preset a rung runs on (None: the ladder's): the faster of the energy plan's and the
        overload step's, where it keeps the rung's stream headers."""
        planned = ask.faster if ask is not None and rung.name in ask.fast else None
        preset = faster_of(planned, overloaded)
        if preset is None or preset == self.ladder.preset:
            return None
        return preset if x264.headers_match(rung, self.fps, self.ladder.preset, preset) else None

    @property
    def faster_now(self) -> dict[str, str]:
        """The rungs on a faster preset now, and the preset."""
        return {o.rung.name: o.faster for o in self._outputs if o.faster}

    @property
    def encoder_status(self) -> dict:
        """The encoders as /api/feeds shows them: the ladder's preset, the rungs on a faster one
        now (the energy plan's or an overload step's), and the overload steps (None: off)."""
        return {"preset": self.ladder.preset, "faster": self.faster_now,
                "overload": self.overload.status() if self.overload is not None else None}

    @property
    def codecs(self) -> dict[str, str]:
        return {o.rung.name: o.codecs for o in self._outputs if o.codecs}

    @property
    def input_signal(self) -> dict:
        """The input's picture and sound states (signal_health.py); all None while the media
        is not the input's (the slate)."""
        return self._signal.snapshot() if self._analyse else dict(NO_SIGNAL)

    def change_input(self, streams: FeedStreams, *, analyse: bool = True) -> None:
        """The source was opened again. Only the decoders are rebuilt: the encoders, muxers and
        timeline go on, so the output continues without a new init segment or a cut segment.
        `analyse` False: the new media is not the input's (the slate), so it is not monitored."""
        # Drain even when the parameters are the same (a loop): a decoder that meets the next
        # session's IDR may drop the pictures it still holds.
        self._drain_decoders()
        # Each session's states start afresh: a picture lost and found again is judged anew.
        self._analyse = analyse
        self._signal.reset(has_audio=streams.audio is not None)
        self.streams = streams
        self._vdec = _decoder(streams.video)
        # The audio track goes on either way: silent while this input has no audio.
        self._adec = _decoder(streams.audio) if streams.audio else None

    def _drain_decoders(self) -> None:
        try:
            for frame in self._vdec.decode(None):
                self._video_frame(frame)
            for frame in self._deinterlace.flush():
                self._picture(frame)
            if self._adec is not None:
                for aframe in self._adec.decode(None):
                    self._audio_frame(aframe)
        except av.error.FFmpegError:
            pass  # what a broken input still held is lost; the output goes on

    def push(self, units: Iterable[MediaUnit]) -> list[Part | Segment]:
        """Transcode units; returns what they completed, in order: every part as soon as it is
        cut, and each segment right after its last part (before the next segment's first)."""
        started = time.thread_time()
        newest: MediaUnit | None = None
        for unit in units:
            newest = unit
            # The track starts with the feed's first unit (Source drops audio before the first
            # picture), so audio that starts late is preceded by silence.
            self._audio.start(unit.time)
            self._capture_offset = unit.capture - unit.time
            info = self.streams.video if unit.kind == "video" else self.streams.audio
            if unit.kind == "audio" and self._adec is None:
                continue
            dec = self._vdec if unit.kind == "video" else self._adec
            assert info is not None and dec is not None
            try:
                frames = dec.decode(_packet(unit))
            except av.error.FFmpegError as err:
                raise TranscodeError(
                    f"{_stream_name(info)}: codec {info.codec!r} failed to decode at {unit.time:.3f}s: {_why(err)}"
                ) from None
            for frame in frames:
                if unit.kind == "video":
                    self._video_frame(frame)  # type: ignore[arg-type]
                else:
                    self._audio_frame(frame)  # type: ignore[arg-type]
        if self.overload is not None and newest is not None:
            self.overload.observe(self.clock() - newest.capture)
        return self._accounted(self._collect(final=False), started)

    def flush(self) -> list[Part | Segment]:
        started = time.thread_time()
        self._drain_decoders()
        tail: list[av.Packet] = []
        if self._last_video_time is not None:
            tail += self._audio.fill_to(self._last_video_time + 1.0 / self.fps)
        tail += self._audio.flush()
        for o in self._outputs:
            o.mux_audio(tail)
        for o in self._outputs:
            o.finish()
        return self._accounted(self._collect(final=True), started)

    def _accounted(self, done: list[Part | Segment], started: float) -> list[Part | Segment]:
        if self.energy is None:
            return done
        self.energy.pushed(time.thread_time() - started)
        return self.energy.stamp(done)

    def _video_frame(self, frame: VideoFrame) -> None:
        if frame.pts is None:
            return
        for picture in self._deinterlace.push(frame):
            self._picture(picture)

    def _picture(self, frame: VideoFrame) -> None:
        t = float(frame.pts * TIME_BASE)
        seq = segment_index(t, self.segment_duration)
        asked = self._asked  # read once: another thread may ask for a new ladder meanwhile
        if seq != self._current_seq and asked is not None:
            self._min_frame_gap = _frame_gap(self.fps, asked.fps or self.fps)  # the rate changes here
        if self._last_video_time is not None and t - self._last_video_time < self._min_frame_gap:
            return  # above the output rate (or a repeated timestamp): drop
        before, self._last_video_time = self._last_video_time, t
        if self._analyse:
            self._signal.video_frame(frame, t + self._capture_offset)  # a few samples a second
            if self._frame_tap is not None:
                self._frame_tap(frame, t, t + self._capture_offset)
        key = seq != self._current_seq
        if key and before is not None and self._current_seq is not None and seq > self._current_seq + 1:
            self._bridge(before, t)
        if key:
            self._current_seq = seq
            self._pdt[seq] = t + self._capture_offset
            self._apply_ladder(t, asked)
            self._seq_ladder[seq] = self.ladder_now
        for out in self._outputs:
            scaled = out.reformatter.reformat(frame, width=out.rung.width, height=out.rung.height, format="yuv420p")
            scaled.pts, scaled.time_base = frame.pts, TIME_BASE
            scaled.pict_type = PictureType.I if key else PictureType.NONE
            out.mux_video(scaled)
        # Silence where audio is missing: the muxer holds pictures until every track has data.
        self._mux_audio(self._audio.fill_to(t - (MAX_AUDIO_LAG if self._adec is not None else 0.0)))

    def _bridge(self, last: float, t: float) -> None:
        """Whole segments without a picture between the one at `last` and this one at `t` (media
        lost upstream: a camera or a relay that dropped frames for a second or more). The muxer
        times a sample by the next one, so the picture at `last` would last the whole hole, and
        its part and segment with it: every rung is finished at that picture's end and made
        afresh from this one (the same init segment), and the sound goes on from here, not
        through the hole."""
        assert self._current_seq is not None
        end = min(last + 1.0 / self.fps, (self._current_seq + 1) * self.segment_duration)
        self._audio.skip_to(t)
        fresh = []
        for o in self._outputs:
            self._retired.extend(self._retire(o, end))
            again = _RungOutput(o.rung, self.fps, self.part_duration, self.ladder.preset, self._audio.encoder,
                                audio_from=t, faster=o.faster)
            again.last_seq, again.codecs = o.last_seq, o.codecs
            fresh.append(again)
        self._outputs = fresh

    def _apply_ladder(self, t: float, asked: "_Ask | None") -> None:
        """At the first picture of a segment (`t`): the ladder asked for takes effect (the ask
        stays: it is the ladder wanted, compared again at every boundary)."""
        overloaded = self.overload.at_boundary(self.clock()) if self.overload is not None else None
        if asked is None and overloaded is None and not self.faster_now:
            return
        names = asked.rungs if asked is not None else tuple(r.name for r in self.ladder.rungs)
        fps = asked.fps if asked is not None else None
        wanted = {r.name: self._faster_for(r, asked, overloaded) for r in self.ladder.rungs if r.name in names}
        changed = names != self.ladder_now or any(o.faster != wanted[o.rung.name] for o in self._outputs
                                                  if o.rung.name in wanted)
        if changed:
            kept = []
            # A rung on to another preset goes on with the sound its old encoder was not given:
            # AAC comes out of its encoder (and often out of the source) a few frames after the
            # pictures of the same instant, and what falls short of the boundary would
            # otherwise be in neither segment, a hole at which hls.js stalls.
            sound_from: dict[str, float] = {}
            for o in self._outputs:
                if o.rung.name in wanted and o.faster == wanted[o.rung.name]:
                    kept.append(o)
                else:  # dropped, or on to another preset: a new encoder from this segment
                    self._retired.extend(self._retire(o, t))
                    if o.audio_end is not None:
                        sound_from[o.rung.name] = o.audio_end
            have = {o.rung.name for o in kept}
            for rung in self.ladder.rungs:
                if rung.name in wanted and rung.name not in have:
                    kept.append(_RungOutput(rung, self.fps, self.part_duration, self.ladder.preset,
                                            self._audio.encoder, audio_from=sound_from.get(rung.name, t),
                                            faster=wanted[rung.name]))
            order = {r.name: i for i, r in enumerate(self.ladder.rungs)}
            self._outputs = sorted(kept, key=lambda o: order[o.rung.name])
        out_fps = fps or self.fps
        if (changed or out_fps != self._out_fps) and self.energy is not None:
            self.energy.set_rungs([o.rung for o in self._outputs], out_fps, frozenset(self.faster_now))
        self._out_fps = out_fps

    def _retire(self, o: _RungOutput, end: float) -> list[Part | Segment]:
        """A rung dropped at the segment boundary `end`: its encoder and muxer are flushed, and
        the segment it was making is finished there (its last part reaches the boundary)."""
        try:
            o.finish()
        except av.error.FFmpegError:
            pass  # a rung dropped before its first picture has nothing to flush
        done: list[Part | Segment] = []
        if o.codecs is None and o.splitter.init is not None:
            o.codecs = codecs_string(o.splitter.init)
        for frag in o.splitter.take():
            done.extend(self._add_fragment(o, frag))
        if o.pending is not None and o.pending.parts:
            done.append(self._segment(o, end))
        o.pending = None
        return done

    def _audio_frame(self, frame: AudioFrame) -> None:
        t = float(frame.pts * TIME_BASE) if frame.pts is not None else self._audio.time
        if t is None:
            return
        if self._analyse:
            self._signal.audio_frame(frame, t + self._capture_offset)
        self._mux_audio(self._audio.add(frame, t))

    def _mux_audio(self, packets: list[av.Packet]) -> None:
        if packets:
            for o in self._outputs:
                o.mux_audio(packets)

    def _collect(self, final: bool) -> list[Part | Segment]:
        done = self._collected(final)
        if self.parts_from_seq is None:
            return done
        return [x for x in done if not (isinstance(x, Part) and x.seq < self.parts_from_seq)]

    def _collected(self, final: bool) -> list[Part | Segment]:
        done, self._retired = self._retired, []
        for o in self._outputs:
            frags = o.splitter.take()
            if o.codecs is None and o.splitter.init is not None:
                o.codecs = codecs_string(o.splitter.init)
            for frag in frags:
                done.extend(self._add_fragment(o, frag))
            if final and o.pending and o.pending.parts:
                end = (self._last_video_time or o.pending.start) + 1.0 / self.fps
                done.append(self._segment(o, end))
                o.pending = None
        # Forget program date-times no rung can still need.
        if self._pdt:
            oldest = min((o.pending.seq for o in self._outputs if o.pending), default=max(self._pdt))
            for seq in [s for s in self._pdt if s < oldest]:
                del self._pdt[seq]
                self._seq_ladder.pop(seq, None)
        return done

    def _add_fragment(self, o: _RungOutput, frag: Fragment) -> list[Part | Segment]:
        seq = segment_index(frag.time, self.segment_duration)
        out: list[Part | Segment] = []
        if o.pending is not None and seq != o.pending.seq:
            # The segment ended without a part that reached its boundary (missing frames).
            out.append(self._segment(o, frag.time))
            o.pending = None
        if o.pending is None:
            o.pending = _Pending(seq=seq, start=frag.time)
        p = o.pending
        pdt = self._pdt.get(seq, p.start + self._capture_offset) + (frag.time - p.start)
        out.append(Part(
            feed=self.feed, rendition=o.rung.name, seq=seq, index=len(p.parts), start=frag.time,
            duration=round(frag.duration, 6), independent=frag.independent,
            program_date_time=datetime.fromtimestamp(pdt, tz=timezone.utc), data=frag.data, made_at=time.time(),
            ladder=self._seq_ladder.get(seq, ()),
        ))
        p.parts.append(frag.data)
        end = frag.time + frag.duration
        # The part that reaches the next boundary is the segment's last: publish the segment
        # now rather than when the next part is cut, a part duration later. Its end is the next
        # picture's time, so only a part that truly reaches the boundary may close it: frames
        # are not on the boundary grid (the timeline starts at the wall clock), and a part cut
        # half a frame short of it is followed by a picture of the same segment, which would
        # open that seq a second time.
        if frag.duration > 0 and end >= (seq + 1) * self.segment_duration - HALF_TICK:
            out.append(self._segment(o, end))
            o.pending = None
        return out

    def _segment(self, o: _RungOutput, end: float) -> Segment:
        p = o.pending
        assert p is not None
        o.last_seq = p.seq
        pdt = self._pdt.get(p.seq, p.start + self._capture_offset)
        return Segment(
            feed=self.feed,
            rendition=o.rung.name,
            seq=p.seq,
            start=p.start,
            duration=round(end - p.start, 6),
            program_date_time=datetime.fromtimestamp(pdt, tz=timezone.utc),
            data=b"".join(p.parts),
            parts=tuple(len(x) for x in p.parts),
        )
