"""Reading video: the one layer every tool uses (datasets, prediction, features, annotation, checks).

* :func:`index_video`: frame count and presentation times from the packets (no decoding);
* :func:`read_frames` / :func:`read_frames_at`: frames by index or by time, through the
  backends of ``DATA.DECODER`` in order (decord, then PyAV by default; TorchCodec optional);
* :class:`FrameStream`: every frame front to back with its time (bounded memory);
* :func:`probe`: what ``check_videos`` reports: frames that decode, duration, size, verdict.

A frame id means the same frame in every backend (the matrix test checks it;
a backend that gets a kind of file wrong is refused for it, and the reason is
recorded). Readers are opened per call, so nothing is shared across forked
DataLoader workers.

Broken streams (``DATA.PARTIAL_VIDEO``): with "keep" (default) a video whose
stream breaks after k frames is used as a k-frame video, clips are re-planned
on those k frames, and a warning says so; with "fail" it is an unreadable video.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import backends
from .backends import pyav_backend
from .errors import VideoError, reason_of
from .video_index import VideoIndex, check_file, index_video

logger = logging.getLogger("vidrec.data")

BACKENDS = tuple(backends.names())
PARTIAL_POLICIES = ("keep", "fail")
Indices = Union[Sequence[int], np.ndarray, Callable[[int], Sequence[int]]]
to_rgb = pyav_backend.to_rgb

__all__ = ["VideoError", "VideoIndex", "index_video", "read_frames", "read_frames_at", "FrameStream", "probe",
           "count_frames", "decoder_order", "to_rgb", "check_file", "BACKENDS", "PARTIAL_POLICIES"]


def decoder_order(backend: Union[str, Sequence[str]] = "decord", fallback: bool = True) -> List[str]:
    """Backends to try, in order: a list as given; a single name, then PyAV (the reference), when ``fallback``."""
    order = [backend] if isinstance(backend, str) else list(backend)
    if not order:
        raise ValueError("DATA.DECODER names no backend")
    for name in order:
        backends.backend(name)  # ValueError for an unknown name
    if len(order) == 1 and fallback and "pyav" not in order:
        order.append("pyav")
    return order if fallback else order[:1]


def _partial_warning(n: int, k: int, reason: str) -> str:
    return f"decoding stops after {k} of {n} frames ({reason}); using the first {k}"


def read_frames(path, indices: Indices, backend: Union[str, Sequence[str]] = "decord", fallback: bool = True,
                partial: str = "keep") -> Tuple[torch.Tensor, Dict]:
    """Decode frames ``indices`` of ``path`` -> (uint8 tensor (T, H, W, 3), info).

    ``indices``: frame ids, or a callable ``num_frames -> ids`` (so the clip can be
    re-planned when the stream turns out shorter). ``info``: ``backend`` used,
    ``fps``, ``num_frames`` (frames usable), ``indices`` returned, ``times`` (their
    presentation times), and when they apply ``fallback_reason``, ``refused``
    (backend -> why it may not read this file), ``warning`` (a broken stream) and
    ``clamped`` (fixed ids past the real end). Raises :class:`VideoError`.
    """
    path = str(path)
    if partial not in PARTIAL_POLICIES:
        raise ValueError(f"DATA.PARTIAL_VIDEO must be one of {PARTIAL_POLICIES}, got {partial!r}")
    order = decoder_order(backend, fallback)
    index = index_video(path)
    errors, refused = [], {}
    for name in order:
        b = backends.backend(name)
        why = b.unavailable() or b.refuses(index)
        if why:
            refused[name] = why
            continue
        try:
            frames, info = _read_with(b, name, path, index, indices, partial)
        except VideoError as e:
            errors.append(e.reason if e.reason.startswith(name) else f"{name}: {e.reason}")
            continue
        if errors:
            info["fallback_reason"] = errors[0]
        if refused:
            info["refused"] = refused
        return frames, info
    raise VideoError(path, "; ".join(errors + [f"{k} refused: {v}" for k, v in refused.items()]))


def _plan(indices: Indices, n: int) -> Tuple[np.ndarray, int]:
    """(ids, how many were clamped to the last frame)."""
    if callable(indices):
        return np.asarray(indices(n), dtype=np.int64), 0
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and idx.min() < 0:
        raise ValueError(f"negative frame index {int(idx.min())}")
    clamped = int((idx >= n).sum())
    return np.minimum(idx, n - 1), clamped


def _read_with(b, name: str, path: str, index: VideoIndex, indices: Indices, partial: str):
    n = index.num_frames
    idx, clamped = _plan(indices, n)
    got = b.read(path, np.unique(idx), index)
    warning = ""
    if got.stopped_at >= 0:  # the stream broke (or ended) before the frames we want
        k = got.stopped_at
        if k == 0:
            raise VideoError(path, f"{name}: no frame could be decoded ({got.stop_reason})")
        if partial == "fail":
            raise VideoError(path, f"{name}: decoding stops after {k} of {n} frames ({got.stop_reason})")
        warning, n = _partial_warning(index.num_frames, k, got.stop_reason), k
        idx, clamped = _plan(indices, n)
        missing = np.setdiff1d(np.unique(idx), np.fromiter(got.frames, np.int64, len(got.frames)))
        if missing.size:
            more = b.read(path, missing, index)
            got.frames.update(more.frames)
    missing = [int(i) for i in np.unique(idx) if int(i) not in got.frames]
    if missing:
        raise VideoError(path, f"{name}: frames {missing[:3]} could not be decoded")
    frames = np.stack([got.frames[int(i)] for i in idx]) if idx.size else np.zeros((0, 1, 1, 3), np.uint8)
    info = {"backend": name, "fps": index.fps, "num_frames": n, "indices": idx, "times": index.times[idx]}
    if clamped:
        info["clamped"] = clamped
    if warning:
        info["warning"] = warning
    return torch.from_numpy(np.ascontiguousarray(frames)), info


def read_frames_at(path, times: Sequence[float], **kwargs) -> Tuple[torch.Tensor, Dict]:
    """The frames shown at ``times`` (seconds from the first frame); see :func:`read_frames`."""
    index = index_video(str(path))
    return read_frames(path, [index.frame_at(t) for t in times], **kwargs)


class FrameStream:
    """Every frame of a video front to back: ``(frame id, time in s, av.VideoFrame)`` (PyAV, bounded memory).

    ``index`` is known before iterating (frame count and times from the packets).
    A stream that breaks mid-way ends where decoding stopped: with ``partial="keep"``
    the frames before it are kept and :attr:`warning` says what happened; with
    "fail", or when no frame decodes at all, iteration raises :class:`VideoError`.
    Convert frames with :func:`to_rgb` and the reused :attr:`reformatter`.
    """

    def __init__(self, path, partial: str = "keep", threads: int = 0):
        self.path, self.threads = str(path), int(threads)  # decoder threads; 0: one per core
        if partial not in PARTIAL_POLICIES:
            raise ValueError(f"DATA.PARTIAL_VIDEO must be one of {PARTIAL_POLICIES}, got {partial!r}")
        self.index = index_video(self.path)
        self.fps, self.partial = self.index.fps, partial
        self.frames_read, self.warning, self.reformatter = 0, "", None

    def __iter__(self) -> Iterator[Tuple[int, float, object]]:
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()
        n = self.index.num_frames
        it = pyav_backend.decoded_frames(self.path, self.index, threads="AUTO",  # frame threads: faster here
                                         thread_count=self.threads)
        while True:
            try:
                fid, frame = next(it)
            except StopIteration:
                break
            except Exception as e:  # a corrupt packet
                self._stopped(reason_of(e, self.path))
                break
            yield fid, float(self.index.times[min(fid, n - 1)]), frame  # the i-th frame is shown at times[i]
            self.frames_read += 1
        if self.frames_read == 0:
            raise VideoError(self.path, "no frame could be decoded")
        if self.frames_read < n and not self.warning:
            self._stopped("the stream ends before its last packets")

    def _stopped(self, reason: str) -> None:
        k, n = self.frames_read, self.index.num_frames
        if k == 0:
            raise VideoError(self.path, f"no frame could be decoded ({reason})")
        if self.partial == "fail":
            raise VideoError(self.path, f"decoding stops after {k} of {n} frames ({reason})")
        self.warning = _partial_warning(n, k, reason)


def count_frames(path) -> int:
    """Frames that decode, front to back (up to a break in the stream)."""
    stream = FrameStream(path)
    return sum(1 for _ in stream)


def probe(path, backend: Union[str, Sequence[str]] = "decord", fallback: bool = True, partial: str = "keep",
          threads: int = 0) -> Dict:
    """Trustworthy facts about a video: frames that decode, times, display size, and the verdict.

    Decodes the whole file with PyAV (header counts lie, streams break), then reads
    the first and the last usable frame through ``backend`` (as training would), so a
    file the pipeline reads only through a fallback, or not at all, shows here.
    ``status``: "ok", or "partial" (the stream breaks; usable with ``partial="keep"``).
    ``threads``: decoder threads (0: one per core; 1 in each of many worker processes).
    """
    path = str(path)
    check_file(path)
    stream = FrameStream(path, partial=partial, threads=threads)
    n = sum(1 for _ in stream)
    frames, info = read_frames(path, [0, n - 1], backend=backend, fallback=fallback, partial=partial)
    index = stream.index
    res = {"path": path, "num_frames": n, "index_frames": index.num_frames, "header_frames": index.header_frames,
           "fps": index.fps, "duration": index.duration(n), "start_time": index.start_time,
           "height": int(frames.shape[1]), "width": int(frames.shape[2]), "backend": info["backend"],
           "container": index.container, "codec": index.codec,
           "status": "partial" if stream.warning else "ok", "warning": stream.warning}
    for key in ("fallback_reason", "refused"):
        if key in info:
            res[key] = info[key]
    if index.repeated_ticks:  # frames right (counted in decoding order), their times approximate
        res["note"] = "several frames share a timestamp: their times are approximate"
    return res
