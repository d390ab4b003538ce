"""Frame-accurate video reading with decord (default) and PyAV (fallback).

Readers are opened per call and closed before returning, so nothing is ever
shared across forked DataLoader workers. Only the frames a request needs are
decoded. Header frame counts are treated as estimates: PyAV decodes
sequentially and discovers the real end; decord failures (VP9/AV1, corrupt
streams, indices past the real end) are retried with PyAV.
"""
from __future__ import annotations

import math
import os
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

BACKENDS = ("decord", "pyav")
Indices = Union[Sequence[int], np.ndarray, Callable[[int], Sequence[int]]]


class VideoError(Exception):
    """A video that cannot be opened or decoded; one line naming file and reason."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), " ".join(str(reason).split())[:300]
        super().__init__(f"{self.path}: {self.reason}")


def _reason(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    if "DECORDError" in type(e).__name__ or "threaded_decoder" in msg:
        msg = msg.split("]")[-1].strip() or msg  # drop decord's C++ stack prefix
    return f"{type(e).__name__}: {msg[:200]}"


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoError(path, "file not found")
    if not os.path.isfile(path):
        raise VideoError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "empty file (0 bytes)")


# --------------------------------------------------------------------------- decord
def _read_decord(path: str, indices: Indices) -> Tuple[np.ndarray, Dict]:
    import decord

    try:
        # num_threads=1: several VP9 files only decode single-threaded, and
        # DataLoader workers already give the parallelism.
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        n, fps = len(vr), float(vr.get_avg_fps() or 0.0)
        if n <= 0:
            raise VideoError(path, "decord: no frames")
        idx = np.asarray(indices(n) if callable(indices) else indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise VideoError(path, f"decord: index {int(idx.max())} outside 0..{n - 1}")
        uniq, inverse = np.unique(idx, return_inverse=True)
        frames = vr.get_batch(uniq.tolist()).asnumpy()[inverse] if idx.size else np.zeros((0, 1, 1, 3), np.uint8)
        del vr
    except VideoError:
        raise
    except Exception as e:  # decord raises RuntimeError/DECORDError subclasses
        raise VideoError(path, "decord: " + _reason(e)) from None
    return frames, {"backend": "decord", "fps": fps, "num_frames": n, "indices": idx}


# --------------------------------------------------------------------------- PyAV
def _rotate(img: np.ndarray, rotation) -> np.ndarray:
    """Apply the display-matrix rotation (degrees counter-clockwise) like decord/ffmpeg do."""
    k = int(round((rotation or 0) / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


def _pyav_header(stream, container) -> Tuple[int, float]:
    fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0.0)
    n = int(stream.frames or 0)
    if n <= 0:  # MKV/webm often carry no count: estimate from the duration
        dur = None
        if stream.duration and stream.time_base:
            dur = float(stream.duration * stream.time_base)
        elif container.duration:
            dur = container.duration / 1e6
        n = int(round(dur * fps)) if dur and fps else 0
    return n, fps


def _pyav_decode(path: str, wanted: np.ndarray, seek: bool = True) -> Tuple[Dict[int, np.ndarray], int, bool, float, int]:
    """Decode frames ``wanted`` (sorted unique ids) -> ({id: rgb}, frames seen, reached_end, fps, header n).

    Frame ids are counted from the first decoded frame. When the first wanted
    frame is far from the start, we seek to a key frame before it and derive
    ids from timestamps; the result is checked and we redo a sequential pass
    if the timestamps turn out unusable.
    """
    import av

    out: Dict[int, np.ndarray] = {}
    with av.open(path, metadata_errors="ignore") as container:
        if not container.streams.video:
            raise VideoError(path, "no video stream (audio-only or not a video)")
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        n_header, fps = _pyav_header(stream, container)
        tb = float(stream.time_base) if stream.time_base else 0.0
        start = stream.start_time or 0
        first = int(wanted[0]) if len(wanted) else 0
        use_pts = seek and fps > 0 and tb > 0 and first > 2 * max(fps, 1)
        if use_pts:
            # Ids count from the first *decoded* frame (its pts may differ from start_time, e.g. AVI).
            for frame in container.decode(stream):
                start = frame.pts if frame.pts is not None else start
                break
            target = start + int((first - fps) / fps / tb)  # 1 s margin before the first frame
            container.seek(max(target, start), stream=stream, backward=True, any_frame=False)
        wanted_set, last = set(int(i) for i in wanted), int(wanted[-1]) if len(wanted) else -1
        count, reached_end, fid = 0, True, -1
        for frame in container.decode(stream):
            if use_pts:
                if frame.pts is None:
                    return _pyav_decode(path, wanted, seek=False)
                new = int(round((frame.pts - start) * tb * fps))
                # Seek overshot, or timestamps out of order / with gaps (AVI B-frames,
                # variable frame rate): ids from pts are unreliable, count sequentially.
                if (count == 0 and new > first) or (count > 0 and new != fid + 1):
                    return _pyav_decode(path, wanted, seek=False)
                fid = new
            else:
                fid = count
            count += 1
            if fid in wanted_set and fid not in out:
                out[fid] = _rotate(frame.to_ndarray(format="rgb24"), getattr(frame, "rotation", 0))
            if fid >= last:
                reached_end = False
                break
        if use_pts and count == 0:  # seek past the real end: count from the start instead
            return _pyav_decode(path, wanted, seek=False)
        seen = fid + 1
    return out, seen, reached_end, fps, n_header


def _read_pyav(path: str, indices: Indices) -> Tuple[np.ndarray, Dict]:
    import av

    try:
        with av.open(path, metadata_errors="ignore") as c:
            if not c.streams.video:
                raise VideoError(path, "no video stream (audio-only or not a video)")
            n_header, fps = _pyav_header(c.streams.video[0], c)
        n = n_header
        if callable(indices):
            if n <= 0:  # nothing in the header: count by decoding
                n = count_frames(path)
            idx = np.asarray(indices(n), dtype=np.int64)
        else:
            idx = np.asarray(indices, dtype=np.int64)
        if idx.size and idx.min() < 0:
            raise VideoError(path, f"negative frame index {int(idx.min())}")
        uniq = np.unique(idx)
        got, seen, reached_end, fps, _ = _pyav_decode(path, uniq)
        info = {"backend": "pyav", "fps": fps, "num_frames": max(n, seen)}
        if reached_end:
            info["num_frames"] = seen  # the real end is known now
        missing = [i for i in uniq.tolist() if i not in got]
        if missing and reached_end and seen > 0:
            # The header promised more frames than exist: re-plan the clip on the real
            # count, or clamp fixed ids to the real last frame, and decode again.
            if callable(indices):
                idx = np.asarray(indices(seen), dtype=np.int64)
            else:
                info["clamped"] = int((idx >= seen).sum())
                idx = np.minimum(idx, seen - 1)
            uniq = np.unique(idx)
            got, *_ = _pyav_decode(path, uniq)
            missing = [i for i in uniq.tolist() if i not in got]
        if missing:
            raise VideoError(path, f"frames {missing[:3]} could not be decoded" if got else "no frame could be decoded")
        frames = np.stack([got[int(i)] for i in idx]) if idx.size else np.zeros((0, 1, 1, 3), np.uint8)
    except VideoError:
        raise
    except Exception as e:  # av.error.*, MemoryError on absurd headers, ...
        raise VideoError(path, "pyav: " + _reason(e)) from None
    info["indices"] = idx
    return frames, info


def count_frames(path: str) -> int:
    """Number of frames that actually decode (PyAV, no colour conversion)."""
    import av

    with av.open(path, metadata_errors="ignore") as c:
        if not c.streams.video:
            raise VideoError(path, "no video stream (audio-only or not a video)")
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


# --------------------------------------------------------------------------- public API
def read_frames(path, indices: Indices, backend: str = "decord", fallback: bool = True) -> Tuple[torch.Tensor, Dict]:
    """Decode frames ``indices`` of ``path`` -> (uint8 tensor (T, H, W, 3), info).

    ``indices`` is a list of frame ids or a callable ``num_frames -> ids`` (the
    callable form lets the clip be re-planned when the header count is wrong).
    ``info``: backend used, fps, num_frames, indices actually returned, and
    ``fallback_reason`` when the primary backend failed. Rotation metadata is
    applied by both backends. Raises :class:`VideoError`.
    """
    path = str(path)
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoder backend {backend!r}; choose from {BACKENDS}")
    _check_file(path)
    order = [backend] + ([b for b in BACKENDS if b != backend] if fallback else [])
    errors = []
    for b in order:
        try:
            frames, info = (_read_decord if b == "decord" else _read_pyav)(path, indices)
        except VideoError as e:
            errors.append(e.reason)
            continue
        if errors:
            info["fallback_reason"] = errors[0]
        return torch.from_numpy(np.ascontiguousarray(frames)), info
    raise VideoError(path, "; ".join(errors))


def probe(path, backend: str = "decord", fallback: bool = True) -> Dict:
    """Trustworthy facts about a video: frames that decode, fps, display size, duration.

    Decodes the whole file with PyAV (no colour conversion) because header
    counts lie; also checks that ``backend`` can read the first and last frame,
    so a file the training pipeline would fall back on is visible
    (``backend`` in the result is the one that will be used).
    """
    path = str(path)
    _check_file(path)
    try:
        n = count_frames(path)
    except VideoError:
        raise
    except Exception as e:
        raise VideoError(path, "pyav: " + _reason(e)) from None
    if n == 0:
        raise VideoError(path, "no frame could be decoded")
    frames, info = read_frames(path, [0, n - 1], backend=backend, fallback=fallback)
    fps = info["fps"]
    res = {"path": path, "num_frames": n, "fps": fps, "height": int(frames.shape[1]), "width": int(frames.shape[2]),
           "duration": n / fps if fps else math.nan, "backend": info["backend"]}
    if "fallback_reason" in info:
        res["fallback_reason"] = info["fallback_reason"]
    return res
