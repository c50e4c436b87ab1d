"""`analysis:` in orbitcast.yaml: the optional face and expression stage (docs/analysis.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AnalysisConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False, description="sample decoded frames of the live feeds and tag faces and expressions")
    feeds: tuple[str, ...] = Field(default=(), description="feeds to analyse; empty: all")
    sample_fps: float = Field(default=2.0, gt=0, le=30, description="pictures analysed per second of each feed")
    min_face_score: float = Field(default=0.5, ge=0, le=1, description="a detection below this score is not a face")
    detector: Literal["full", "short"] = Field(
        default="full",
        description="BlazeFace model: full range (faces small in the picture, about 3 ms) or short range (close-ups, about 1 ms)",
    )
    width: int = Field(
        default=640, ge=64, le=3840,
        description="sampled pictures are scaled to this width (aspect kept) before analysis",
    )
    queue: int = Field(
        default=2, ge=1, le=64,
        description="samples of a feed in flight to its analyser; past that a sample is dropped and counted",
    )

    def covers(self, feed: str) -> bool:
        return self.enabled and (not self.feeds or feed in self.feeds)
