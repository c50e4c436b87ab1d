"""What a subscriber keeps of one feed and rendition, written to disk as it arrives.

The file is a fragmented MP4: the init segment, then media segments in seq order, each
appended whole the moment it can be placed. So at any instant (a SIGTERM, a SIGKILL, a full
disk) the file is playable up to the last segment written, and memory holds at most the few
segments waiting for a missing one.

Segments may arrive out of order or twice (the gateway retries until it sees a 200). One that
arrives ahead of a missing seq waits; when `reorder` segments are waiting, the missing one is
given up as a gap and writing goes on. A segment behind what is written already cannot be put
in its place in an appended file: it is counted as late and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .sealing.blobs import SegmentMeta

DEFAULT_REORDER = 3  # segments held while waiting for a missing one (a few seconds of media)


@dataclass
class Recording:
    feed: str
    rendition: str
    path: Path
    reorder: int = DEFAULT_REORDER
    written: list[int] = field(default_factory=list)  # seqs in the file, in order
    durations: dict[int, float] = field(default_factory=dict)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) seqs given up
    late: int = 0  # segments that came after their place in the file was passed
    size: int = 0  # bytes in the file
    _pending: dict[int, tuple[SegmentMeta, bytes]] = field(default_factory=dict, repr=False)
    _out: BinaryIO | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def has_init(self) -> bool:
        return self._out is not None

    @property
    def media_count(self) -> int:
        """Media segments received and kept (written or waiting to be)."""
        return len(self.written) + len(self._pending)

    def duration(self) -> float:
        return sum(self.durations[s] for s in self.written)

    def add(self, meta: SegmentMeta, data: bytes) -> bool:
        """Keep a verified segment of our feed and rendition; False if not ours, a repeat or late."""
        if (meta.feed, meta.rendition) != (self.feed, self.rendition):
            return False
        if meta.kind == "init":
            if self._out is not None:
                return False
            self._out = self.path.open("wb")
            self._append(data)
            self._drain(force=False)
            return True
        if meta.seq in self._pending or meta.seq in self.durations:
            return False
        if self.written and meta.seq < self.written[-1]:
            self.late += 1
            return False
        self._pending[meta.seq] = (meta, data)
        self._drain(force=False)
        return True

    def close(self) -> None:
        """Write every segment still waiting (in seq order, gaps named) and close the file."""
        self._drain(force=True)
        if self._out is not None:
            self._out.close()

    def _drain(self, *, force: bool) -> None:
        if self._out is None:
            return  # nothing is playable before the init segment
        while self._pending:
            first = min(self._pending)
            expected = self.written[-1] + 1 if self.written else first
            if first != expected:
                if not force and len(self._pending) < self.reorder:
                    return
                self.gaps.append((expected, first - 1))
            meta, data = self._pending.pop(first)
            self._append(data)
            self.written.append(first)
            self.durations[first] = meta.duration

    def _append(self, data: bytes) -> None:
        assert self._out is not None
        self._out.write(data)
        # Out of this process's buffers at once: a kill loses nothing already written.
        self._out.flush()
        self.size += len(data)
