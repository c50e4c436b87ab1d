"""A feed made from the astronaut photograph (scikit-image's `astronaut()`, Eileen Collins): her
photo panned and zoomed across a dark studio, then plain grey frames. Made on the fly with PyAV
(no video is committed); needs scikit-image (the `analysis` extra)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def make_astronaut_feed(path: Path, width: int = 320, height: int = 180, fps: int = 10, face_s: float = 4.0,
                        plain_s: float = 2.0, zoom: tuple[float, float] = (0.85, 1.0)) -> Path:
    """H.264 MP4 without audio: `face_s` seconds of the photograph (its side from zoom[0] to
    zoom[1] of the picture height, panned left to right), then `plain_s` seconds of grey. At
    320x180 her face is about 50 px high: zoomed out further, BlazeFace misses it now and then."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "g": str(fps)}
        for i in range(round((face_s + plain_s) * fps)):
            t = i / fps
            img = np.full((height, width, 3), 128 if t >= face_s else 35, np.uint8)
            if t < face_s:
                k = t / face_s
                side = int(height * (zoom[0] + (zoom[1] - zoom[0]) * k))
                x, y = int((width - side) * k), (height - side) // 2
                img[y:y + side, x:x + side] = np.asarray(photo.resize((side, side), Image.Resampling.BILINEAR))
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path
