"""The two models behind small interfaces, so that either can be replaced (another detector,
a better expression model) without touching the stage around them."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .results import Box, Detection


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in an 8-bit (H, W) grey or (H, W, 3) RGB picture, boxes in its pixels."""
        ...


class ExpressionClassifier(Protocol):
    labels: tuple[str, ...]

    def classify(self, frame: np.ndarray, box: Box) -> tuple[float, ...]:
        """One probability per label for the face in `box` of the picture."""
        ...
