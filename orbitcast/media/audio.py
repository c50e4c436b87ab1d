"""The ladder's one audio track: any decoded audio (any codec, layout, sample format or rate)
to AAC stereo 48 kHz on the feed's timeline, without gaps, for every rung to carry.

Input timestamps place the audio but do not time it: output timestamps are a count of the
samples written. Broadcast sources do not keep their audio timestamps in step with their
samples (a PES holding several frames under one time, jitter, a splice), and an AAC stream
whose timestamps go back is refused by the muxer. Audio that runs ahead of its place by more
than `TOLERANCE` gets silence before it; audio that overlaps what was written loses the
overlap. A source without audio, or whose audio starts late or stalls, gets silence, so that
every rung keeps the same two tracks and a player never waits for an audio sample.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

RATE = 48000
LAYOUT = "stereo"
FRAME = 1024  # samples per AAC frame
# Timestamp error let through without a correction (TS timestamps jitter by a few ms).
TOLERANCE = round(0.02 * RATE)
# Audio may arrive this far behind the video it goes with (TS muxes audio up to ~1 s after
# the pictures of the same instant); past that, silence is written so that pictures are
# not held back in the muxer waiting for audio that may never come.
MAX_AUDIO_LAG = 2.0
# From this bit rate (stereo) the encoder uses its cheaper coder (see LadderAudio).
FAST_CODER_FROM = 96_000


class LadderAudio:
    """One AAC encoder and the continuous sample clock that feeds it."""

    def __init__(self, bit_rate: int) -> None:
        enc = av.CodecContext.create("aac", "w")
        enc.sample_rate = RATE
        enc.layout = LAYOUT
        enc.format = "fltp"
        enc.bit_rate = bit_rate
        enc.time_base = Fraction(1, RATE)
        # FFmpeg's AAC encoder: its `fast` coder is "better and much faster at higher bitrates",
        # worse below 64 kbit/s (FFmpeg's codec docs). At the demo's 128 kbit/s: 0.016 CPU s per
        # media second against the default `twoloop`'s 0.036, on a live path with no CPU to spare.
        if bit_rate >= FAST_CODER_FROM:
            enc.options = {"aac_coder": "fast"}
        enc.open()
        self.encoder: av.AudioCodecContext = enc
        self._resampler: AudioResampler | None = None
        self._input_key: tuple[str, str, int] | None = None
        self._buf = np.zeros((2, 0), dtype=np.float32)
        self._written: int | None = None  # sample index (at RATE) after the last sample taken

    @property
    def time(self) -> float | None:
        """Seconds on the feed's timeline up to which audio has been written."""
        return None if self._written is None else self._written / RATE

    def start(self, t: float) -> None:
        """Begin the track at `t` (the first picture), so that late audio is preceded by silence."""
        if self._written is None:
            self._written = round(t * RATE)

    def add(self, frame: AudioFrame, t: float) -> list[av.Packet]:
        """A decoded frame that starts at `t` seconds on the feed's timeline."""
        samples = self._conform(frame)
        at = round(t * RATE)
        if self._written is None:
            self._written = at
        drift = at - self._written
        if drift > TOLERANCE:
            samples = np.concatenate([np.zeros((2, drift), dtype=np.float32), samples], axis=1)
        elif drift < -TOLERANCE:
            samples = samples[:, -drift:]
        return self._write(samples)

    def fill_to(self, t: float) -> list[av.Packet]:
        """Silence up to `t` where no audio has been written (no audio, or audio that is late)."""
        if self._written is None:
            return []
        missing = round(t * RATE) - self._written
        if missing <= 0:
            return []
        return self._write(np.zeros((2, missing), dtype=np.float32))

    def skip_to(self, t: float) -> None:
        """The timeline moved ahead to `t` over a hole of whole segments with no pictures (see
        LiveTranscoder._bridge): the track goes on from there rather than fill the hole with
        silence no rung would carry. Samples short of a whole AAC frame are dropped."""
        at = round(t * RATE)
        if self._written is not None and at > self._written:
            self._buf = self._buf[:, :0]
            self._written = at

    def flush(self) -> list[av.Packet]:
        packets = []
        if self._buf.shape[1] and self._written is not None:
            packets += self._encode(self._buf, self._written - self._buf.shape[1])
            self._buf = self._buf[:, :0]
        return packets + list(self.encoder.encode(None))

    def _conform(self, frame: AudioFrame) -> np.ndarray:
        """The frame as planar float stereo at RATE; a new resampler when the input changes
        (another program, a reopened source), since one resampler takes one input format."""
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self._input_key:
            self._resampler = AudioResampler(format="fltp", layout=LAYOUT, rate=RATE)
            self._input_key = key
        assert self._resampler is not None
        frame.pts = None  # timing is ours (see the module docstring), not the resampler's
        out = [f.to_ndarray() for f in self._resampler.resample(frame)]
        if not out:
            return np.zeros((2, 0), dtype=np.float32)
        return np.concatenate(out, axis=1).astype(np.float32, copy=False)

    def _write(self, samples: np.ndarray) -> list[av.Packet]:
        assert self._written is not None
        self._written += samples.shape[1]
        self._buf = np.concatenate([self._buf, samples], axis=1)
        first = self._written - self._buf.shape[1]
        whole = self._buf.shape[1] // FRAME * FRAME
        packets: list[av.Packet] = []
        for i in range(0, whole, FRAME):
            packets += self._encode(self._buf[:, i:i + FRAME], first + i)
        self._buf = self._buf[:, whole:]
        return packets

    def _encode(self, samples: np.ndarray, pts: int) -> list[av.Packet]:
        frame = AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=LAYOUT)
        frame.sample_rate = RATE
        frame.pts = pts
        frame.time_base = Fraction(1, RATE)
        return list(self.encoder.encode(frame))
