"""A video's frame index from its container, without decoding: how many frames, and when each is shown.

Every tool counts frames and tells time from this one index, so a frame id
means the same frame everywhere and clip times are presentation times, not
``index / fps`` (which is wrong for variable frame rates, timestamp gaps and
headers that lie). Reading the packets costs a few milliseconds per video.

Time 0 is the first frame's presentation time: a stream whose first
timestamp is 0.54 s (MPEG program streams often start so) shows its first
frame at 0.0 s; :attr:`VideoIndex.start_time` keeps the offset.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .errors import VideoError, reason_of


@dataclass(frozen=True)
class VideoIndex:
    path: str
    container: str          # FFmpeg's format name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "avi", "mpeg"
    codec: str              # e.g. "h264", "mpeg4", "vp9"
    fps: float              # the container's average rate (0 when unknown)
    header_frames: int      # what the container claims (0 when it does not say)
    start_time: float       # seconds: the first frame's timestamp in the file
    times: np.ndarray       # (N,) seconds from the first frame, sorted: frame i is shown at times[i]
    ticks: np.ndarray       # (N,) the same as integer timestamps in the stream's time base
    reordered: bool         # packets arrive out of presentation order (B-frames)
    keys: np.ndarray = None  # (K,) ids of the key frames (where a decoder may start), ascending; None: unknown
    open_gop: bool = True   # frames after a key frame may depend on frames before it (or we cannot tell)
    repeated_ticks: bool = False  # several frames share a timestamp: a frame cannot be found by its time

    @property
    def num_frames(self) -> int:
        return int(self.times.size)

    def frame_duration(self) -> float:
        """How long the last frame is shown: 1 / the container's rate (else the median gap)."""
        if self.fps > 0:
            return 1.0 / self.fps
        return float(np.median(np.diff(self.times))) if self.times.size > 1 else 0.0

    def frame_end(self, i: int, num_frames: int = -1) -> float:
        """When frame ``i`` stops being shown (the next frame's time; for the last one, + a frame duration)."""
        n = self.num_frames if num_frames < 0 else num_frames
        if i + 1 < min(n, self.num_frames):
            return float(self.times[i + 1])
        return float(self.times[i]) + self.frame_duration()

    def duration(self, num_frames: int = -1) -> float:
        """Seconds from the first frame's start to the end of frame ``num_frames - 1`` (default: the last)."""
        n = self.num_frames if num_frames < 0 else num_frames
        return self.frame_end(n - 1, n) if n > 0 else 0.0

    def frame_at(self, t: float) -> int:
        """The frame shown at time ``t`` (seconds from the first frame)."""
        return int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, self.num_frames - 1))


def check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoError(path, "file not found")
    if not os.path.isfile(path):
        raise VideoError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "empty file (0 bytes)")


def header_count(stream, container) -> int:
    """Frames the container claims (MKV/WebM store none: estimated from the duration)."""
    n = int(stream.frames or 0)
    if n <= 0:
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        dur = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else (
            container.duration / 1e6 if container.duration else 0.0)
        n = int(round(dur * fps)) if dur and fps else 0
    return n


_CACHE: "OrderedDict[tuple, VideoIndex]" = OrderedDict()
CACHE_SIZE = 4096  # indexes kept per process (a few KB each): a worker reads a video every epoch


def index_video(path) -> VideoIndex:
    """The frame index of ``path`` from its packets (PyAV demuxing, no decoding).

    Kept per process while the file is unchanged (same size and mtime), so the
    training loader demuxes a video once, not for every clip of every epoch.
    """
    path = str(path)
    check_file(path)
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    index = _read_index(path)
    _CACHE[key] = index
    if len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return index


def _read_index(path: str) -> VideoIndex:
    import av

    try:
        with av.open(path, metadata_errors="ignore") as c:
            if not c.streams.video:
                raise VideoError(path, "no video stream (audio-only or not a video)")
            s = c.streams.video[0]
            ticks, key_ticks, reordered, last, key, leading = [], [], False, None, None, False
            for pk in c.demux(s):
                if pk.size == 0:
                    continue  # flush or empty chunk: no frame
                t = pk.pts if pk.pts is not None else pk.dts
                if t is None:
                    t = (last + 1) if last is not None else 0
                reordered |= last is not None and t < last
                if pk.is_keyframe:
                    key = int(t)
                    key_ticks.append(key)
                else:
                    leading |= key is not None and t < key  # shown before its key frame, decoded after it
                ticks.append(int(t))
                last = t
            fps = float(s.average_rate or s.guessed_rate or s.base_rate or 0.0)
            tb = float(s.time_base) if s.time_base else (1.0 / fps if fps else 0.0)
            info = dict(container=c.format.name, codec=s.codec_context.name, fps=fps,
                        header_frames=header_count(s, c),
                        # AVI stamps packets in decode order: leading frames cannot be told from them
                        open_gop=bool(leading or c.format.name == "avi"))
    except VideoError:
        raise
    except Exception as e:  # av.error.*: not a container FFmpeg understands
        raise VideoError(path, reason_of(e, path)) from None
    if not ticks:
        raise VideoError(path, "no frame could be decoded (the video stream is empty)")
    ticks = np.sort(np.asarray(ticks, dtype=np.int64))  # presentation order; a repeated stamp is another frame
    if not tb:  # no time base and no rate: evenly spaced frames of unknown rate
        times = np.arange(ticks.size, dtype=np.float64)
    else:
        times = (ticks - ticks[0]) * tb
    keys = np.unique(np.searchsorted(ticks, np.asarray(key_ticks, dtype=np.int64)))
    keys = keys[keys < ticks.size] if len(key_ticks) else None  # no flags at all: unknown, not "none"
    times.flags.writeable = ticks.flags.writeable = False  # shared through the cache
    if keys is not None:
        keys.flags.writeable = False
    return VideoIndex(path=path, times=times, ticks=ticks, reordered=bool(reordered), keys=keys,
                      repeated_ticks=bool(ticks.size > 1 and (np.diff(ticks) == 0).any()),
                      start_time=float(ticks[0] * tb) if tb else 0.0, **info)
