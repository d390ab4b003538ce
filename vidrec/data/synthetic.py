"""A tiny labelled video dataset whose classes differ only in motion.

Each video shows one object (square or disc, random colours) on a random
noisy background; the class is *how it changes over time* (moves left/right/
up/down, grows, shrinks). The object's positions and sizes have the same
spread in every class, so one frame cannot tell the classes apart: a model has
to use time. Files are real encoded videos (PyAV, h264 or mpeg4), written
atomically, deterministic for a seed, and reused when the same arguments are
given again.

    python -m vidrec.data.synthetic OUT_DIR [--num-classes 4]
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


def render_video(cls: int, rng: np.random.Generator, size: Tuple[int, int], num_frames: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of one video of class ``cls``."""
    h, w = size
    t = np.linspace(0.0, 1.0, num_frames)
    bg = rng.integers(0, 256, 3).astype(np.float32)
    texture = rng.standard_normal((h, w, 1), dtype=np.float32) * 18
    fg = rng.integers(0, 256, 3).astype(np.float32)
    if np.abs(fg - bg).sum() < 200:  # keep the object visible
        fg = 255.0 - bg
    disc = rng.random() < 0.5
    lo = min(h, w)
    if cls < 2 or cls >= 4:  # translation along x (0, 1) or y (4, 5)
        s = np.full(num_frames, rng.uniform(0.2, 0.3) * lo)
        travel = rng.uniform(0.35, 0.5)
        along_len, across_len = (w, h) if cls < 2 else (h, w)
        a0 = rng.uniform(0, 1 - travel) * (along_len - s[0]) + s[0] / 2
        a1 = a0 + travel * (along_len - s[0])
        along = a0 + (a1 - a0) * (t if cls in (1, 5) else 1 - t)
        across = np.full(num_frames, rng.uniform(s[0] / 2, across_len - s[0] / 2))
        cx, cy = (along, across) if cls < 2 else (across, along)
    else:  # growing (2) / shrinking (3) in place
        small, big = rng.uniform(0.12, 0.2) * lo, rng.uniform(0.4, 0.5) * lo
        s = small + (big - small) * (t if cls == 2 else 1 - t)
        cx = np.full(num_frames, rng.uniform(big / 2, w - big / 2))
        cy = np.full(num_frames, rng.uniform(big / 2, h - big / 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
    r = (s / 2)[:, None, None]
    mask = (dx ** 2 + dy ** 2 <= r ** 2) if disc else ((np.abs(dx) <= r) & (np.abs(dy) <= r))
    frames = np.where(mask[..., None], fg, bg + texture)
    frames += rng.standard_normal(frames.shape, dtype=np.float32) * 6
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
                           size: Tuple[int, int] = (64, 64), num_frames: int = 32, seed: int = 0) -> Dict:
    """Write the dataset under ``root`` -> {"root", "train", "val", "test", "classes", "num_classes"}.

    Lists are ``path,label`` CSVs with paths relative to ``root``; ``classes.txt``
    names the classes. Re-running with the same arguments reuses the files.
    """
    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be in 2..{len(CLASSES)}")
    if size[0] % 2 or size[1] % 2:
        raise ValueError("size must be even (yuv420p)")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    args = {"num_classes": num_classes, "videos_per_class": list(videos_per_class), "size": list(size),
            "num_frames": num_frames, "seed": seed, "version": 1}
    meta = root / "synthetic.json"
    reuse = meta.is_file() and json.loads(meta.read_text()) == args
    names = [c.replace(" ", "_") for c in CLASSES[:num_classes]]
    result = {"root": str(root), "classes": str(root / "classes.txt"), "num_classes": num_classes}
    for split, n in zip(SPLIT_IDS, videos_per_class):
        paths, labels = [], []
        for c in range(num_classes):
            (root / split / names[c]).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rel = f"{split}/{names[c]}/{i:04d}.mp4"
                if not (reuse and (root / rel).is_file()):
                    rng = np.random.default_rng([seed, SPLIT_IDS[split], c, i])
                    write_video(root / rel, render_video(c, rng, size, num_frames))
                paths.append(rel)
                labels.append(c)
        write_path_label_list(root / f"{split}.csv", paths, labels)
        result[split] = str(root / f"{split}.csv")
    (root / "classes.txt").write_text("\n".join(CLASSES[:num_classes]) + "\n")
    meta.write_text(json.dumps(args))
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description="Write the synthetic motion-only video dataset (real encoded files "
                                "plus train/val/test.csv lists and classes.txt).")
    p.add_argument("out_dir")
    p.add_argument("--num-classes", type=int, default=4, help=f"2..{len(CLASSES)}: {', '.join(CLASSES)}")
    p.add_argument("--per-class", type=int, nargs=3, default=(24, 6, 6), metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    r = make_synthetic_dataset(a.out_dir, a.num_classes, a.per_class, tuple(a.size), a.frames, a.seed)
    print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
