"""Pictures as the models take them: RGB or grey numpy arrays, letterboxed, cropped, scaled."""

from __future__ import annotations

import numpy as np
from PIL import Image


def check_frame(frame: np.ndarray) -> np.ndarray:
    """An 8-bit picture, (H, W) grey or (H, W, 3) RGB; anything else is a ValueError."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"a picture is a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a picture is 8-bit (uint8), got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
        raise ValueError(f"a picture is (H, W) grey or (H, W, 3) RGB, got shape {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"an empty picture: shape {frame.shape}")
    return frame


def to_rgb(frame: np.ndarray) -> np.ndarray:
    return np.repeat(frame[:, :, None], 3, axis=2) if frame.ndim == 2 else frame


def to_gray(frame: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B), as FER2013's pictures and OpenCV's
    COLOR_RGB2GRAY have it; Pillow's "L" conversion in fixed point."""
    if frame.ndim == 2:
        return frame
    return np.asarray(Image.fromarray(frame, "RGB").convert("L"))


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, int, int]:
    """The picture scaled to fit a `size` square (aspect kept), centred on black, as float32
    in [-1, 1]; with the scale and the left and top offsets that map it back."""
    h, w = frame.shape[:2]
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = np.asarray(Image.fromarray(to_rgb(frame), "RGB").resize((nw, nh), Image.Resampling.BILINEAR))
    left, top = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[top:top + nh, left:left + nw] = resized
    canvas *= 2.0 / 255.0
    canvas -= 1.0
    canvas[:top] = -1.0
    canvas[top + nh:] = -1.0
    canvas[:, :left] = -1.0
    canvas[:, left + nw:] = -1.0
    return canvas, scale, left, top
