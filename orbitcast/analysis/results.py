"""What the analysis stage says about a picture and a segment (plain data, no models here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The classes of the FER2013 expression model, in the order of its output.
EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels of the analysed picture: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Detection:
    """A face found by a detector: where, and how sure (0-1)."""

    box: Box
    score: float


@dataclass(frozen=True)
class Face:
    """A detected face and its expression probabilities (one per EXPRESSIONS class, sum 1)."""

    box: Box
    score: float
    probabilities: tuple[float, ...]

    @property
    def expression(self) -> str:
        return EXPRESSIONS[max(range(len(self.probabilities)), key=self.probabilities.__getitem__)]

    @property
    def confidence(self) -> float:
        return max(self.probabilities)

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": [self.box.x, self.box.y, self.box.w, self.box.h],
            "score": round(self.score, 4),
            "expression": self.expression,
            "probabilities": {name: round(p, 4) for name, p in zip(EXPRESSIONS, self.probabilities)},
        }


@dataclass(frozen=True)
class FrameAnalysis:
    """One sampled picture: its media time (seconds on the feed's timeline), capture time (unix
    seconds, 0 when unknown), size, and the faces found in it."""

    time: float
    width: int
    height: int
    faces: tuple[Face, ...] = ()
    capture: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time, "capture": self.capture, "width": self.width, "height": self.height,
                "faces": [f.as_dict() for f in self.faces]}


@dataclass(frozen=True)
class SegmentSummary:
    """The tags of one segment. `faces`: the most faces seen in one of its analysed pictures.
    `expression`: the class with the highest mean probability over every face seen in the
    segment, `confidence` that mean; both None when no face was seen. `frames`: pictures
    analysed; `probabilities`: the mean of each class (empty without faces)."""

    seq: int
    frames: int
    faces: int
    expression: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    start: float | None = None  # capture time of its first analysed picture (unix seconds)
    end: float | None = None  # capture time of its last analysed picture

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "frames": self.frames, "faces": self.faces, "expression": self.expression,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "start": self.start, "end": self.end,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SegmentSummary":
        """The inverse of `as_dict` (what crosses from the analysis actor to the edge); a
        ValueError for a dict that is not a summary."""
        try:
            confidence = d.get("confidence")
            return cls(
                seq=int(d["seq"]), frames=int(d["frames"]), faces=int(d["faces"]), expression=d.get("expression"),
                confidence=None if confidence is None else float(confidence),
                probabilities={str(k): float(v) for k, v in (d.get("probabilities") or {}).items()},
                start=None if d.get("start") is None else float(d["start"]),
                end=None if d.get("end") is None else float(d["end"]),
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a segment summary: {err}") from None
