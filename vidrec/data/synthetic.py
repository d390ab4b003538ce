"""A tiny labelled video dataset whose classes differ only in motion.

Each video shows one object (square or disc, random colours) on a random
noisy background; the class is *how it changes over time* (moves left/right/
up/down, grows, shrinks). The object's positions and sizes have the same
spread in every class, so one frame cannot tell the classes apart: a model has
to use time. Files are real encoded videos (PyAV, h264 or mpeg4), written
atomically, deterministic for a seed, and reused when the same arguments are
given again.

Options for studies (experiments/depth_study/): ``speeds=2`` doubles the
classes (each motion slow or fast: 12 in all), ``distractors`` adds smaller
objects that jitter in random walks (drawn alike in every class), ``clutter``
static rectangles in the background, ``noise`` the per-pixel noise, and
``bright_objects`` one contrast polarity (moving things brighter than a dim
background: with random polarities, 1/8-width ResNet3Ds at 32 px stayed at
chance for all of the 650 steps tried, even on the original 6 classes). The
defaults give the original videos, byte for byte.

    python -m vidrec.data.synthetic OUT_DIR [--num-classes 4] [--speeds 2 --bright-objects --distractors 1]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

from .lists import write_path_label_list

CLASSES = ("moving left", "moving right", "growing", "shrinking", "moving up", "moving down")
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
# Options of the harder variant, with the defaults that give the original videos.
HARD_DEFAULTS = {"speeds": 1, "distractors": 0, "clutter": 0, "noise": 6.0, "bright_objects": False}


def class_names(speeds: int = 1) -> Tuple[str, ...]:
    """Class c is motion ``c // speeds`` at speed ``c % speeds`` (slow, fast)."""
    if speeds not in (1, 2):
        raise ValueError(f"speeds must be 1 or 2, got {speeds}")
    return CLASSES if speeds == 1 else tuple(f"{m} {v}" for m in CLASSES for v in ("slowly", "fast"))


def _blobs(rng, n, lo, size_range):
    """n random squares/discs: colours (n, 3), sizes (n,), disc flags (n,)."""
    return (rng.integers(0, 256, (n, 3)).astype(np.float32), rng.uniform(*size_range, n) * lo, rng.random(n) < 0.5)


def _shape_mask(dx, dy, r, disc):
    return (dx ** 2 + dy ** 2 <= r ** 2) if disc else ((np.abs(dx) <= r) & (np.abs(dy) <= r))


def _random_walks(rng, n, num_frames, h, w, margin):
    """(n, T) x and y of jittering objects: velocity 0.8 v + N(0, 0.7) px per frame, reflected at the borders."""
    pos = np.empty((2, n, num_frames))
    pos[:, :, 0] = rng.uniform(margin, [[w - margin], [h - margin]], (2, n))
    v = rng.normal(0, 0.7, (2, n))
    for t in range(1, num_frames):
        v = 0.8 * v + rng.normal(0, 0.7, (2, n))
        p = pos[:, :, t - 1] + v
        for k, hi in enumerate((w - margin, h - margin)):
            over, under = p[k] > hi, p[k] < margin
            p[k] = np.where(over, 2 * hi - p[k], np.where(under, 2 * margin - p[k], p[k]))
            v[k] = np.where(over | under, -v[k], v[k])
        pos[:, :, t] = p
    return pos[0], pos[1]


def render_video(cls: int, rng: np.random.Generator, size: Tuple[int, int], num_frames: int, speeds: int = 1,
                 distractors: int = 0, clutter: int = 0, noise: float = 6.0,
                 bright_objects: bool = False) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of one video of class ``cls`` (see :func:`class_names`)."""
    h, w = size
    motion, fast = (cls, None) if speeds == 1 else divmod(cls, speeds)
    t = np.linspace(0.0, 1.0, num_frames)
    bg = rng.integers(0, 256, 3).astype(np.float32)
    texture = rng.standard_normal((h, w, 1), dtype=np.float32) * 18
    fg = rng.integers(0, 256, 3).astype(np.float32)
    if np.abs(fg - bg).sum() < 200:  # keep the object visible
        fg = 255.0 - bg
    if bright_objects:  # one contrast polarity: moving things brighter than a dim background
        bg, fg = bg * 0.5, np.minimum(bg * 0.5 + 120, 255)
    disc = rng.random() < 0.5
    lo = min(h, w)
    if motion < 2 or motion >= 4:  # translation along x (0, 1) or y (4, 5)
        # slow / fast travel a quarter / over half of the free length; sizes spread like the growing ones
        s = np.full(num_frames, rng.uniform(0.2, 0.3) * lo if fast is None else rng.uniform(0.14, 0.42) * lo)
        travel = rng.uniform(0.35, 0.5) if fast is None else rng.uniform(*((0.45, 0.6) if fast else (0.15, 0.25)))
        along_len, across_len = (w, h) if motion < 2 else (h, w)
        a0 = rng.uniform(0, 1 - travel) * (along_len - s[0]) + s[0] / 2
        a1 = a0 + travel * (along_len - s[0])
        along = a0 + (a1 - a0) * (t if motion in (1, 5) else 1 - t)
        across = np.full(num_frames, rng.uniform(s[0] / 2, across_len - s[0] / 2))
        cx, cy = (along, across) if motion < 2 else (across, along)
    else:  # growing (2) / shrinking (3) in place
        if fast is None:
            small, big = rng.uniform(0.12, 0.2) * lo, rng.uniform(0.4, 0.5) * lo
        else:  # size ratio 1.5-1.9 (slow) or 2.6-3.4 (fast), anywhere in 0.12-0.5 of the frame
            ratio = rng.uniform(*((2.6, 3.4) if fast else (1.5, 1.9)))
            small = rng.uniform(0.12, 0.5 / ratio) * lo
            big = small * ratio
        s = small + (big - small) * (t if motion == 2 else 1 - t)
        cx = np.full(num_frames, rng.uniform(big / 2, w - big / 2))
        cy = np.full(num_frames, rng.uniform(big / 2, h - big / 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    back = bg + texture
    if clutter:  # static rectangles, textured like the background
        cols, sizes, _ = _blobs(rng, clutter, lo, (0.15, 0.4))
        cols = cols * 0.5 if bright_objects else cols
        x0, y0, aspect = rng.uniform(0, w, clutter), rng.uniform(0, h, clutter), rng.uniform(0.5, 2.0, clutter)
        for col, sz, x, y, a in zip(cols, sizes, x0, y0, aspect):
            rect = (np.abs(xx - x) <= sz / 2) & (np.abs(yy - y) <= sz * a / 2)
            back = np.where(rect[..., None], col + texture, back)
    frames = np.broadcast_to(back, (num_frames, h, w, 3))
    if distractors:  # below the object, so that it stays whole
        cols, sizes, discs = _blobs(rng, distractors, lo, (0.08, 0.14))
        cols = np.minimum(bg + 60 + 0.3 * cols, 255) if bright_objects else cols
        xs, ys = _random_walks(rng, distractors, num_frames, h, w, margin=float(sizes.max()) / 2)
        for col, sz, dsc, x, y in zip(cols, sizes, discs, xs, ys):
            m = _shape_mask(xx[None] - x[:, None, None], yy[None] - y[:, None, None], sz / 2, dsc)
            frames = np.where(m[..., None], col, frames)
    dx, dy = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
    mask = _shape_mask(dx, dy, (s / 2)[:, None, None], disc)
    frames = np.where(mask[..., None], fg, frames)
    frames += rng.standard_normal(frames.shape, dtype=np.float32) * noise
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_video(path, frames: np.ndarray, fps: int = 25) -> None:
    """Encode frames (T, H, W, 3) to ``path`` atomically (h264, else mpeg4)."""
    import av

    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(tmp), "w", format="mp4") as out:
        st = out.add_stream(codec, rate=fps, options={"preset": "ultrafast", "crf": "20"} if codec == "libx264" else {})
        st.height, st.width, st.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        for f in frames:
            out.mux(st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(st.encode())
    os.replace(tmp, path)


def make_synthetic_dataset(root, num_classes: int = 4, videos_per_class: Sequence[int] = (24, 6, 6),
                           size: Tuple[int, int] = (64, 64), num_frames: int = 32, seed: int = 0,
                           speeds: int = 1, distractors: int = 0, clutter: int = 0, noise: float = 6.0,
                           bright_objects: bool = False) -> Dict:
    """Write the dataset under ``root`` -> {"root", "train", "val", "test", "classes", "num_classes"}.

    Lists are ``path,label`` CSVs with paths relative to ``root``; ``classes.txt``
    names the classes. Re-running with the same arguments reuses the files.
    ``speeds``, ``distractors``, ``clutter``, ``noise``, ``bright_objects``: the harder variant (module docstring).
    """
    classes = class_names(speeds)
    if not 2 <= num_classes <= len(classes):
        raise ValueError(f"num_classes must be in 2..{len(classes)}")
    if size[0] % 2 or size[1] % 2:
        raise ValueError("size must be even (yuv420p)")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    # Only options that differ from the defaults are recorded: the original datasets keep their metadata.
    hard = {"speeds": speeds, "distractors": distractors, "clutter": clutter, "noise": noise,
            "bright_objects": bright_objects}
    opts = {k: v for k, v in hard.items() if v != HARD_DEFAULTS[k]}
    args = {"num_classes": num_classes, "videos_per_class": list(videos_per_class), "size": list(size),
            "num_frames": num_frames, "seed": seed, "version": 1, **opts}
    meta = root / "synthetic.json"
    reuse = meta.is_file() and json.loads(meta.read_text()) == args
    names = [c.replace(" ", "_") for c in classes[:num_classes]]
    result = {"root": str(root), "classes": str(root / "classes.txt"), "num_classes": num_classes}
    for split, n in zip(SPLIT_IDS, videos_per_class):
        paths, labels = [], []
        for c in range(num_classes):
            (root / split / names[c]).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rel = f"{split}/{names[c]}/{i:04d}.mp4"
                if not (reuse and (root / rel).is_file()):
                    rng = np.random.default_rng([seed, SPLIT_IDS[split], c, i])
                    write_video(root / rel, render_video(c, rng, size, num_frames, **opts))
                paths.append(rel)
                labels.append(c)
        write_path_label_list(root / f"{split}.csv", paths, labels)
        result[split] = str(root / f"{split}.csv")
    (root / "classes.txt").write_text("\n".join(classes[:num_classes]) + "\n")
    meta.write_text(json.dumps(args))
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description="Write the synthetic motion-only video dataset (real encoded files "
                                "plus train/val/test.csv lists and classes.txt).")
    p.add_argument("out_dir")
    p.add_argument("--num-classes", type=int, default=4, help=f"2..{len(CLASSES)} (x speeds): {', '.join(CLASSES)}")
    p.add_argument("--per-class", type=int, nargs=3, default=(24, 6, 6), metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speeds", type=int, default=1, choices=(1, 2), help="2: each motion slow or fast")
    p.add_argument("--distractors", type=int, default=0, help="jittering distractor objects per video")
    p.add_argument("--clutter", type=int, default=0, help="static background rectangles per video")
    p.add_argument("--noise", type=float, default=6.0, help="per-pixel noise (std, 0-255 scale)")
    p.add_argument("--bright-objects", action="store_true", help="moving things brighter than the background")
    a = p.parse_args(argv)
    r = make_synthetic_dataset(a.out_dir, a.num_classes, a.per_class, tuple(a.size), a.frames, a.seed,
                               speeds=a.speeds, distractors=a.distractors, clutter=a.clutter, noise=a.noise,
                               bright_objects=a.bright_objects)
    print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
