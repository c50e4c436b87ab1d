"""The one currency between stages: a media segment of one rendition of one feed.

Every hop (transcoder -> packager -> gateway -> edge) carries a `Segment` and checks its
digest on arrival, so a corrupted hand-off is caught where it happens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self


class DigestMismatch(ValueError):
    """A segment's bytes do not match the digest it was handed over with."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Digested:
    """Bytes handed over with their SHA-256: computed when not given, checked by `verified`."""

    data: bytes
    digest: str

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", sha256_hex(self.data))

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def name(self) -> str:
        raise NotImplementedError

    def verified(self) -> Self:
        """Return self if the bytes match the digest, else raise `DigestMismatch`."""
        actual = sha256_hex(self.data)
        if actual != self.digest:
            raise DigestMismatch(f"{self.name}: digest {actual} != expected {self.digest}")
        return self


@dataclass(frozen=True)
class SegmentEnergy:
    """What encoding a segment of one rung cost (orbitcast/energy/accounting.py): joules,
    where they come from (`rapl` counters or the power `model`) and one standard error."""

    joules: float
    source: str
    error_joules: float


@dataclass(frozen=True)
class Segment(_Digested):
    """One CMAF media segment (a run of fMP4 fragments, starting with a keyframe).

    `start` and `duration` are in seconds on the feed's media timeline (the same for every
    rung of one `seq`); `program_date_time` is the wall-clock (UTC) time of its first frame.
    """

    feed: str
    rendition: str
    seq: int
    start: float
    duration: float
    program_date_time: datetime
    data: bytes = field(repr=False)
    digest: str = ""
    parts: tuple[int, ...] = ()  # byte lengths of the LL-HLS parts that make up `data`
    energy: SegmentEnergy | None = None  # set by the transcoder when energy accounting is on

    def __post_init__(self) -> None:
        super().__post_init__()
        # A part list that does not tile the bytes would make parts and segment disagree in
        # every playlist that lists both: refuse it where it is made.
        if self.parts and (min(self.parts) <= 0 or sum(self.parts) != len(self.data)):
            raise ValueError(f"{self.name}: parts {self.parts} do not tile its {len(self.data)} bytes")

    @property
    def name(self) -> str:
        return f"{self.feed}/{self.rendition}/{self.seq}"

    @property
    def bitrate(self) -> int:
        """Bits per second of this segment's bytes over its duration."""
        return int(len(self.data) * 8 / self.duration) if self.duration > 0 else 0


@dataclass(frozen=True)
class Part(_Digested):
    """One LL-HLS partial segment: a CMAF fragment (moof+mdat) of one rung, published the
    moment the transcoder has cut it. Part `index` counts from 0 within segment `seq`; the
    parts of a segment, in index order, concatenate to the segment's bytes.
    """

    feed: str
    rendition: str
    seq: int
    index: int
    start: float  # seconds on the feed's media timeline
    duration: float
    independent: bool  # starts with a keyframe
    program_date_time: datetime  # wall-clock (UTC) time of its first frame
    data: bytes = field(repr=False)
    digest: str = ""
    made_at: float = 0.0  # unix time the transcoder cut it: where the delivery hop is timed from
    # The rungs the transcoder makes for this seq (the ladder in force; every part of a seq says
    # the same). Empty: not said, the whole configured ladder. A rung it leaves out is dropped
    # from this seq on (the energy plan, docs/energy.md): the edge lists it as a gap.
    ladder: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.feed}/{self.rendition}/{self.seq}.{self.index}"
