"""Write a copy of a video with the current label drawn on every frame (PyAV + PIL).

The video is decoded and re-encoded frame by frame (bounded memory), each frame
at its own presentation time, so the copy lasts as long as the original. A
frame shows the top-1 label of the window whose centre is nearest to it.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Dict, List

import numpy as np

from ..data.decoders import FrameStream, to_rgb


def nearest_clip(clips: List[Dict], frame: int, hint: int = 0) -> int:
    """Index into ``clips`` (sorted by start) of the window whose centre is nearest ``frame``;
    ``hint`` (the previous answer) makes a front-to-back walk linear."""
    centre = [(c["start_frame"] + c["end_frame"] - 1) / 2 for c in clips]
    i = min(max(hint, 0), len(clips) - 1)
    while i + 1 < len(clips) and abs(centre[i + 1] - frame) <= abs(centre[i] - frame):
        i += 1
    return i


def _font(height: int):
    from PIL import ImageFont

    size = max(10, height // 18)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def draw_label(img: np.ndarray, text: str, font=None) -> np.ndarray:
    """Text on a dark box in the top-left corner of an RGB frame."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    font = font or _font(img.shape[0])
    x0, y0, x1, y1 = d.textbbox((6, 4), text, font=font)
    d.rectangle((x0 - 4, y0 - 3, x1 + 4, y1 + 3), fill=(0, 0, 0))
    d.text((6, 4), text, fill=(255, 255, 255), font=font)
    return np.asarray(im)


def annotate_video(result: Dict, out_path: str, codec: str = "libx264") -> str:
    """Draw ``result`` (a ``Predictor.predict`` output) onto a copy of its video at ``out_path``."""
    import av

    clips = result["clips"]
    reader = FrameStream(result["path"])
    fps = Fraction(reader.fps).limit_denominator(1001) if reader.fps else Fraction(25)
    font, stream, hint, pts = None, None, 0, -1
    with av.open(str(out_path), "w") as out:
        for f, t, frame in reader:
            img = to_rgb(frame, reader.reformatter)
            h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2  # yuv420p needs even sizes
            img = np.ascontiguousarray(img[:h, :w])
            if stream is None:
                stream = out.add_stream(codec, rate=fps)
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                font = _font(h)
            if f >= result["num_frames"]:
                break
            hint = nearest_clip(clips, f, hint)
            top = clips[hint]["topk"][0]
            img = draw_label(img, f"{top['label']} {top['prob']:.2f}  {t:.1f}s", font)
            out_frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            # The source's own times (variable rate, gaps) in 1/fps steps, strictly increasing.
            pts = max(pts + 1, int(round(t * float(fps))))
            out_frame.pts = pts
            out.mux(stream.encode(out_frame))
        if stream is not None:
            out.mux(stream.encode())
    return str(out_path)
