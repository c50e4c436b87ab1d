"""The note an exported clip carries about where it came from (an MP4 comment).

It is a claim, not a proof: `orbitcast verify` reads it only to know which certified segments
to fetch and compare the clip's samples with (`orbitcast/ledger/clip_match.py`). A forged or
edited note makes the comparison fail; it can never make a clip pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from ..ledger.leaf import NAME_RE

PREFIX = "orbitcast-clip "
VERSION = 1
_INIT_TAG = re.compile(r"[0-9a-f]{0,64}")


class ClipTagError(ValueError):
    """A comment that starts as a clip note but does not parse as one."""


@dataclass(frozen=True)
class ClipTag:
    feed: str
    rendition: str
    first_seq: int
    last_seq: int
    init: str  # the init segment's tag (init.mp4?v=TAG); "" for the live init
    start: str  # the range asked for, ISO 8601 UTC (for people reading the note)
    end: str
    reencoded: int = 0  # video frames at the start that were encoded anew (--exact)

    def comment(self) -> str:
        return PREFIX + json.dumps({"v": VERSION, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def parse(cls, comment: str | None) -> "ClipTag | None":
        """The note in an MP4 comment; None when the comment is no clip note."""
        if not comment or not comment.startswith(PREFIX):
            return None
        try:
            obj = json.loads(comment[len(PREFIX):])
            if obj.pop("v") != VERSION:
                raise ClipTagError(f"clip note version {obj.get('v')!r} is not {VERSION}")
            tag = cls(**obj)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise ClipTagError(f"malformed clip note: {e}") from None
        ints = (tag.first_seq, tag.last_seq, tag.reencoded)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
            raise ClipTagError("malformed clip note: seqs and counts must be whole numbers")
        if tag.last_seq < tag.first_seq:
            raise ClipTagError("malformed clip note: last seq before first")
        if not all(isinstance(v, str) for v in (tag.feed, tag.rendition, tag.init, tag.start, tag.end)):
            raise ClipTagError("malformed clip note: names must be strings")
        # The verifier builds URLs from these: only plain names, never a path.
        if not (NAME_RE.fullmatch(tag.feed) and NAME_RE.fullmatch(tag.rendition) and _INIT_TAG.fullmatch(tag.init)):
            raise ClipTagError("malformed clip note: feed, rendition or init tag is not a plain name")
        return tag

    @property
    def seqs(self) -> range:
        return range(self.first_seq, self.last_seq + 1)
