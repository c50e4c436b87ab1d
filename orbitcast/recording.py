"""What a subscriber keeps of one feed and rendition: the init segment and the media segments
that arrived (in any order, possibly more than once), written out in seq order as one
playable fragmented MP4, with the gaps named."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .sealing.blobs import SegmentMeta


@dataclass
class Recording:
    feed: str
    rendition: str
    init: bytes | None = None
    segments: dict[int, bytes] = field(default_factory=dict)
    durations: dict[int, float] = field(default_factory=dict)

    def add(self, meta: SegmentMeta, data: bytes) -> bool:
        """Keep a verified segment of our feed and rendition; False if not ours or a repeat."""
        if (meta.feed, meta.rendition) != (self.feed, self.rendition):
            return False
        if meta.kind == "init":
            self.init = data
            return True
        if meta.seq in self.segments:
            return False
        self.segments[meta.seq] = data
        self.durations[meta.seq] = meta.duration
        return True

    @property
    def media_count(self) -> int:
        return len(self.segments)

    def gaps(self) -> list[tuple[int, int]]:
        """Missing seq ranges (first, last) between the first and the last segment received."""
        seqs = sorted(self.segments)
        return [(a + 1, b - 1) for a, b in zip(seqs, seqs[1:]) if b - a > 1]

    def duration(self) -> float:
        return sum(self.durations.values())

    def write(self, path: str | Path) -> int:
        """init + segments in seq order; returns bytes written. Needs the init segment."""
        if self.init is None:
            raise ValueError(f"no init segment received for {self.feed}/{self.rendition}: nothing playable to write")
        data = self.init + b"".join(self.segments[s] for s in sorted(self.segments))
        Path(path).write_bytes(data)
        return len(data)
