"""One sampled picture in, its faces and their expressions out."""

from __future__ import annotations

import numpy as np

from .blazeface import BlazeFaceDetector, Range
from .expression import FerExpressionClassifier
from .frames import check_frame
from .protocols import ExpressionClassifier, FaceDetector
from .results import EXPRESSIONS, Face, FrameAnalysis

MAX_FACES = 8  # a crowd is tagged by its largest faces; the cost stays bounded


class FrameAnalyzer:
    def __init__(self, detector: FaceDetector, classifier: ExpressionClassifier,
                 min_face_score: float = 0.5, max_faces: int = MAX_FACES) -> None:
        if tuple(classifier.labels) != EXPRESSIONS:
            raise ValueError(f"the classifier's labels {classifier.labels} are not {EXPRESSIONS}")
        self.detector = detector
        self.classifier = classifier
        self.min_face_score = min_face_score
        self.max_faces = max_faces

    @classmethod
    def default(cls, min_face_score: float = 0.5, range_: Range = "full", threads: int = 1) -> "FrameAnalyzer":
        """BlazeFace and the FER2013 model from their installed packages (AnalysisUnavailable
        when they are not installed)."""
        return cls(BlazeFaceDetector(range_, min_face_score, threads), FerExpressionClassifier(threads), min_face_score)

    def analyze(self, frame: np.ndarray, time: float = 0.0, capture: float = 0.0) -> FrameAnalysis:
        frame = check_frame(frame)
        found = [d for d in self.detector.detect(frame) if d.score >= self.min_face_score]
        found.sort(key=lambda d: d.box.w * d.box.h, reverse=True)
        faces = tuple(Face(d.box, d.score, self.classifier.classify(frame, d.box)) for d in found[: self.max_faces])
        return FrameAnalysis(time=time, width=frame.shape[1], height=frame.shape[0], faces=faces, capture=capture)
