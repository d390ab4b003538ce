"""Clip timing for sliding-window inference (pure arithmetic, no decoding).

A clip is ``num_frames`` frames ``rate`` apart (see :mod:`vidrec.data.sampling`),
spanning ``span = (num_frames - 1) * rate + 1`` frames. Windows start every
``hop`` frames: ``0, hop, 2 * hop, ...`` while the whole window fits in the
video, or, with a hop in seconds, at the first frame shown at or after
``0, hop_s, 2 * hop_s, ...`` (presentation times, so variable frame rates and
timestamp gaps are handled). With ``cover_end`` one more window, aligned to the
last frame, is added when the regular ones stop short of it. A video shorter
than one window gives a single window at frame 0 whose indices loop
(``DATA.SHORT_VIDEO``).

Times are presentation times in seconds from the first frame (see
:mod:`vidrec.data.video_index`): a window covering frames ``[s, e)`` runs from
when frame ``s`` is shown to when frame ``e - 1`` stops being shown.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import List, Optional

import numpy as np

from ..data.sampling import clip_indices, clip_span


@dataclass(frozen=True)
class Window:
    index: int        # position in the video's list of windows
    start_frame: int  # first frame of the window
    end_frame: int    # one past the last frame the window covers (clamped to the video)
    start: float      # seconds
    end: float        # seconds

    def as_dict(self) -> dict:
        return asdict(self)


def hop_frames(hop: Optional[float] = None, hop_seconds: Optional[float] = None, fps: float = 0.0,
               default: int = 1) -> int:
    """Hop in frames from a hop in frames or in seconds (rounded, at least 1)."""
    if hop is not None and hop_seconds is not None:
        raise ValueError("give the hop in frames or in seconds, not both")
    if hop_seconds is not None:
        if hop_seconds <= 0:
            raise ValueError(f"hop must be positive, got {hop_seconds} s")
        if not fps or fps <= 0 or not math.isfinite(fps):
            raise ValueError("a hop in seconds needs the video's frame rate, which is unknown")
        return max(1, int(round(hop_seconds * fps)))
    if hop is None:
        return max(1, int(default))
    if hop <= 0 or int(hop) != hop:
        raise ValueError(f"hop in frames must be a positive integer, got {hop}")
    return int(hop)


def window_starts(video_frames: int, span: int, hop: int, cover_end: bool = False) -> List[int]:
    """Start frames of the windows of a ``video_frames``-long video."""
    if video_frames < 1:
        raise ValueError("video has no frames")
    if span < 1 or hop < 1:
        raise ValueError("span and hop must be >= 1")
    last = video_frames - span
    if last < 0:
        return [0]
    starts = list(range(0, last + 1, hop))
    if cover_end and starts[-1] != last:
        starts.append(last)
    return starts


def time_starts(times: np.ndarray, video_frames: int, span: int, hop_seconds: float,
                cover_end: bool = False) -> List[int]:
    """Start frames of windows every ``hop_seconds`` of presentation time (``times``: seconds per frame)."""
    if hop_seconds <= 0:
        raise ValueError(f"hop must be positive, got {hop_seconds} s")
    last = video_frames - span
    if last < 0:
        return [0]
    t = np.asarray(times[:video_frames], dtype=np.float64)
    marks = np.arange(0.0, t[last] + 1e-9, hop_seconds)
    starts = sorted({int(s) for s in np.searchsorted(t, marks - 1e-9) if s <= last})
    if cover_end and starts[-1] != last:
        starts.append(last)
    return starts


class RegularTimeline:
    """Frames evenly ``1 / fps`` apart (unknown rate: every time is NaN)."""

    def __init__(self, fps: float):
        self.fps = fps if fps and fps > 0 else math.nan

    def time(self, i: int) -> float:
        return i / self.fps

    def frame_end(self, i: int, num_frames: int = -1) -> float:
        return (i + 1) / self.fps


def make_window(index: int, start: int, video_frames: int, span: int, timeline, known_frames: int = -1) -> Window:
    """``timeline``: a :class:`~vidrec.data.video_index.VideoIndex` (presentation times) or a
    :class:`RegularTimeline`; ``known_frames``: frames whose times may be used for the end
    (default ``video_frames``; more while a stream is still being read)."""
    end = min(start + span, video_frames)
    begin = timeline.time(start) if hasattr(timeline, "time") else float(timeline.times[start])
    return Window(index, int(start), int(end), begin,
                  timeline.frame_end(end - 1, max(video_frames, known_frames)))


def windows(video_frames: int, num_frames: int, rate: int, hop: int, fps: float,
            cover_end: bool = False) -> List[Window]:
    span = clip_span(num_frames, rate)
    timeline = RegularTimeline(fps)
    return [make_window(i, s, video_frames, span, timeline)
            for i, s in enumerate(window_starts(video_frames, span, hop, cover_end))]


def window_indices(start: int, video_frames: int, num_frames: int, rate: int, short: str = "loop") -> np.ndarray:
    """Frame ids of the window at ``start`` (looped or repeated past the end for short videos)."""
    return clip_indices(start, video_frames, num_frames, rate, short)
