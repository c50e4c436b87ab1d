"""Why a recording job stops; each message is the reason a person reads (no stack trace).

    VodError
    ├── VodInputError   the file cannot be read or transcoded (names the stream and codec)
    ├── NameTaken       the name already holds another recording
    ├── ChunkFailed     a chunk failed after its retries (names its index and time range)
    └── InitMismatch    chunks made different init segments (encoder settings differ)
"""

from __future__ import annotations


class VodError(RuntimeError):
    """A recording job cannot go on; the message says why."""


class VodInputError(VodError):
    """The source file is unreadable, corrupt, or has no stream the ladder can take."""


class NameTaken(VodError):
    """The VOD name already holds a recording of another file."""


class ChunkFailed(VodError):
    def __init__(self, index: int, start: float, end: float, reason: str) -> None:
        super().__init__(f"chunk {index} ({start:.3f}-{end:.3f} s) failed: {reason}")
        self.index = index


class InitMismatch(VodError):
    """Two chunks made different init segments: they could not share one (fail loudly)."""
