"""BlazeFace, MediaPipe's face detector, on a TFLite runtime: anchors, box decoding and the
weighted non-maximum suppression of MediaPipe's face_detection graphs
(mediapipe/modules/face_detection/*_common.pbtxt, ssd_anchors_calculator.cc,
tensors_to_detections_calculator.cc), with their parameters.

Two models: "short" (128 x 128 input, faces within about 2 m of the camera, as in a
talking-head shot) and "full" (192 x 192, faces up to about 5 m, smaller in the picture;
about 3 times the cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .frames import check_frame, letterbox
from .models import BLAZEFACE_FULL, BLAZEFACE_SHORT, ModelFile, interpreter
from .results import Box, Detection

Range = Literal["short", "full"]
RAW_SCORE_LIMIT = 80.0  # MediaPipe clips at 100; exp(100) overflows float32
SUPPRESSION_IOU = 0.3  # boxes overlapping more than this are one face


@dataclass(frozen=True)
class _Spec:
    model: ModelFile
    size: int
    strides: tuple[int, ...]
    # Two anchors per cell where MediaPipe's interpolated_scale_aspect_ratio is 1.0, one at 0.0.
    anchors_per_stride_layer: int
    min_score: float  # MediaPipe's min_score_thresh for the model


SPECS: dict[str, _Spec] = {
    "short": _Spec(BLAZEFACE_SHORT, 128, (8, 16, 16, 16), 2, 0.5),
    "full": _Spec(BLAZEFACE_FULL, 192, (4,), 1, 0.6),
}


def ssd_anchors(size: int, strides: tuple[int, ...], per_layer: int) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1], in the order of the model's outputs. Layers that share
    a stride share one grid, with `per_layer` anchors per cell for each of them."""
    anchors: list[tuple[float, float]] = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        repeats = per_layer * (j - i)
        cells = size // strides[i]
        for y in range(cells):
            for x in range(cells):
                anchors.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * repeats)
        i = j
    return np.array(anchors, np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (xmin, ymin, xmax, ymax in [0, 1] of the model's input) and scores of the anchors
    scoring at least `min_score`. The regressors are offsets in input pixels from the anchor
    centre, then width and height (MediaPipe's fixed-size anchors: scale 1)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
    keep = np.flatnonzero(scores >= min_score)
    reg = raw_boxes.reshape(len(anchors), -1)[keep, :4] / size
    cx = reg[:, 0] + anchors[keep, 0]
    cy = reg[:, 1] + anchors[keep, 1]
    half_w, half_h = reg[:, 2] / 2, reg[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[valid], scores[keep][valid]


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = SUPPRESSION_IOU) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: the best remaining box takes every box overlapping it
    by more than `threshold` (itself included), and the face is their score-weighted mean box
    with the best score. Neighbouring anchors all see one face; their mean is steadier."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    out: list[tuple[np.ndarray, float]] = []
    while len(boxes):
        overlap = _iou(boxes[0], boxes) > threshold
        overlap[0] = True
        w = scores[overlap]
        out.append(((boxes[overlap] * w[:, None]).sum(axis=0) / w.sum(), float(scores[0])))
        boxes, scores = boxes[~overlap], scores[~overlap]
    return out


class BlazeFaceDetector:
    """Faces in an RGB or grey picture, boxes in its pixels. `min_score` below the model's own
    threshold is raised to it (weaker candidates are noise)."""

    def __init__(self, range_: Range = "short", min_score: float = 0.5, threads: int = 1) -> None:
        if range_ not in SPECS:
            raise ValueError(f"BlazeFace range must be one of {sorted(SPECS)}, got {range_!r}")
        self.spec = SPECS[range_]
        self.min_score = max(min_score, self.spec.min_score)
        self._interp: Any = interpreter(self.spec.model, threads)
        self._input = self._interp.get_input_details()[0]["index"]
        outputs = sorted(self._interp.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
        self._boxes_out, self._scores_out = outputs[0]["index"], outputs[1]["index"]
        self.anchors = ssd_anchors(self.spec.size, self.spec.strides, self.spec.anchors_per_stride_layer)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        size = self.spec.size
        tensor, scale, left, top = letterbox(frame, size)
        self._interp.set_tensor(self._input, tensor[None])
        self._interp.invoke()
        boxes, scores = decode(self._interp.get_tensor(self._boxes_out), self._interp.get_tensor(self._scores_out),
                               self.anchors, size, self.min_score)
        found = []
        for box, score in weighted_nms(boxes, scores):
            # input [0, 1] -> input pixels -> picture pixels, clipped to the picture
            x0 = min(max((box[0] * size - left) / scale, 0.0), w)
            y0 = min(max((box[1] * size - top) / scale, 0.0), h)
            x1 = min(max((box[2] * size - left) / scale, 0.0), w)
            y1 = min(max((box[3] * size - top) / scale, 0.0), h)
            if x1 - x0 >= 1 and y1 - y0 >= 1:
                found.append(Detection(Box(round(x0), round(y0), round(x1 - x0), round(y1 - y0)), score))
        return found
