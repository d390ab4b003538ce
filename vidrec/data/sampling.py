"""Which frames a clip uses (pure index arithmetic, no decoding).

A clip is ``num_frames`` frames ``rate`` apart, spanning
``(num_frames - 1) * rate + 1`` frames of the video.
"""
from __future__ import annotations

from typing import List

import numpy as np

SHORT_VIDEO_MODES = ("loop", "repeat_last")


def clip_span(num_frames: int, rate: int) -> int:
    return (num_frames - 1) * rate + 1


def clip_indices(start: int, video_frames: int, num_frames: int, rate: int, short: str = "loop") -> np.ndarray:
    """Frame ids of the clip starting at ``start``; ids past the end wrap (loop) or stick to the last frame."""
    if video_frames < 1:
        raise ValueError("video has no frames")
    if short not in SHORT_VIDEO_MODES:
        raise ValueError(f"DATA.SHORT_VIDEO must be one of {SHORT_VIDEO_MODES}, got {short!r}")
    idx = start + np.arange(num_frames, dtype=np.int64) * rate
    return idx % video_frames if short == "loop" else np.minimum(idx, video_frames - 1)


def train_clip(video_frames: int, num_frames: int, rate: int, rng: np.random.Generator, short: str = "loop") -> np.ndarray:
    """One clip at a uniformly random start (start 0 when the video is shorter than the clip)."""
    max_start = video_frames - clip_span(num_frames, rate)
    start = int(rng.integers(0, max_start + 1)) if max_start > 0 else 0
    return clip_indices(start, video_frames, num_frames, rate, short)


def eval_clip_starts(video_frames: int, num_frames: int, rate: int, num_views: int) -> List[int]:
    """Start frames of up to ``num_views`` clips spread uniformly from the first to the last possible start.

    Rule for short videos (the paper's "up to 10 clips"): there are
    ``video_frames - span + 1`` distinct start positions; when that is fewer than
    ``num_views`` every position is used once (so a video exactly one clip long,
    or shorter, gives a single clip). Starts are ``round(linspace(0, max_start, V))``,
    which are distinct because their spacing is >= 1.
    """
    max_start = max(video_frames - clip_span(num_frames, rate), 0)
    v = max(1, min(num_views, max_start + 1))
    if v == 1:
        return [max_start // 2]  # centred clip
    return [int(s) for s in np.round(np.linspace(0, max_start, v))]


def eval_clips(video_frames: int, num_frames: int, rate: int, num_views: int, short: str = "loop") -> np.ndarray:
    """(V, num_frames) frame ids of the test clips of a video."""
    starts = eval_clip_starts(video_frames, num_frames, rate, num_views)
    return np.stack([clip_indices(s, video_frames, num_frames, rate, short) for s in starts])
