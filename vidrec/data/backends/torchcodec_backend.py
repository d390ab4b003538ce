"""TorchCodec backend (optional): PyTorch's own FFmpeg decoder, exact seeks.

Install: ``pip install "vidrec[torchcodec]"`` plus FFmpeg's shared libraries
(FFmpeg 4 to 9, e.g. ``apt-get install ffmpeg``; TorchCodec does not bundle
them). Where the package or the libraries are missing, :func:`unavailable`
says so in one line and the next backend in ``DATA.DECODER`` is used.

Measured against a sequential PyAV decode (tests/data/test_backend_matrix.py,
torchcodec 0.17, FFmpeg 5.1), in ``seek_mode="exact"``:

* frame i is the i-th frame in presentation order, as in the frame index, and
  the display rotation is applied by TorchCodec itself (90, 180, 270 degrees:
  the same pixels as PyAV + :func:`~vidrec.data.backends.pyav_backend.rotate`);
* it is refused for MPEG program streams (``.mpg``: the previous frame after a
  seek, silently), MPEG transport streams (``.ts``: a later frame, or an error)
  and AVI (off by one or two frames with B-frames; H.264 B-frames in AVI do
  not show in the packets' timestamps, so no AVI is read);
* every returned frame's timestamp is checked against the index, so a kind of
  file the matrix has not seen fails loudly (the next backend reads it) rather
  than returning another frame;
* a stream that breaks mid-way (a frame does not decode) stops the read where
  a front-to-back decode stops, like PyAV (``Decoded.stopped_at``).

CPU decoding, one FFmpeg thread per reader (DataLoader workers give the
parallelism). TorchCodec's ``device="cuda"`` (NVDEC) is not used here: the
backends hand numpy frames to CPU transforms in the workers.
"""
from __future__ import annotations

import functools
import re
from typing import List

import numpy as np

from ..errors import VideoError, clean, native_stderr, reason_of
from . import Decoded

INSTALL = 'pip install "vidrec[torchcodec]"'
REFUSED_CONTAINERS = {
    "mpeg": "returns the previous frame after a seek in an MPEG program stream",
    "mpegts": "fails or returns a later frame in an MPEG transport stream",
    # H.264 B-frames in AVI do not show in the packets' timestamps (VideoIndex.reordered is False): no AVI at all.
    "avi": "returns frames one or two off in AVI with B-frames (not visible in H.264 AVI packets): no AVI is read",
}
# TorchCodec's C++ errors start with the function and its source location: "decode_av_frame, /src/x.cpp:1493, "
_CPP_PREFIX = re.compile(r"^\s*\w+,\s*\S+\.(?:cpp|h|cu):\d+,\s*")


@functools.lru_cache(maxsize=1)
def unavailable() -> str:
    """Why TorchCodec cannot decode video here (one line), "" when it can. Checked once per process."""
    try:
        with native_stderr.captured():
            import torchcodec
            from torchcodec.decoders import VideoDecoder  # noqa: F401
    except ImportError as e:
        if getattr(e, "name", None) == "torchcodec":
            return f"torchcodec is not installed ({INSTALL}, and FFmpeg's shared libraries)"
        return f"torchcodec cannot be imported ({_one_line(e)})"
    except Exception as e:  # OSError: its libraries do not load with this torch
        hint = ""
        if "libnvrtc" in _one_line(e) or "libcuda" in _one_line(e):
            hint = "; a CUDA build of torchcodec needs a CUDA torch, for a CPU torch use its CPU build"
        return f"torchcodec cannot be imported ({_one_line(e)}{hint})"
    if getattr(torchcodec, "ffmpeg_major_version", None) is None:  # imported, but its FFmpeg ops did not load
        return _load_failure(getattr(torchcodec, "__version__", "?"))
    return ""


def _one_line(e: BaseException) -> str:
    """The innermost cause's first line ("OSError: libnvrtc.so.13: cannot open ...", not the wrapper)."""
    seen = 0
    while e.__cause__ is not None and seen < 10:
        e, seen = e.__cause__, seen + 1
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {clean(lines[0] if lines else '')}"[:200]


def _load_failure(version: str) -> str:
    """One line from TorchCodec's many-line loading traceback (one per FFmpeg version it tried)."""
    text = ""
    try:
        from torchcodec._internally_replaced_utils import load_core_libraries  # private: only for the message

        with native_stderr.captured():
            load_core_libraries()
    except Exception as e:
        text = str(e)
    missing = sorted(set(re.findall(r"(lib\w+\.so\.\d+): cannot open shared object file", text)))
    other = [ln.strip() for ln in text.splitlines()
             if re.match(r"\s*\w*(Error|Exception): ", ln) and "cannot open shared object file" not in ln
             and "Could not load this library" not in ln]
    if other:
        return (f"torchcodec {version} cannot load its FFmpeg libraries ({clean(other[0])[:160]}); "
                f"check that FFmpeg 4 to 9 is installed and that this torch is one torchcodec {version} supports")
    majors = {}
    for name in missing:  # libavutil.so.56 ... libavutil.so.60 -> libavutil.so.56-60
        base, major = name.rsplit(".so.", 1)
        majors.setdefault(base, []).append(int(major))
    found = ", ".join(f"{b}.so.{min(m)}" + (f"-{max(m)}" if len(m) > 1 else "") for b, m in majors.items())
    return (f"torchcodec {version} found no FFmpeg shared libraries ({found + ' not found; ' if found else ''}"
            f"install FFmpeg 4 to 9, e.g. apt-get install ffmpeg)")


def refuses(index) -> str:
    names = index.container.split(",")
    for name, what in REFUSED_CONTAINERS.items():
        if name in names:
            return f"torchcodec {what} ({index.container})"
    if index.repeated_ticks:
        return "several frames share a timestamp: torchcodec finds frames by their times"
    return ""


def _reason(e: BaseException, path: str) -> str:
    """``reason_of(e)`` ("RuntimeError: ..."), without TorchCodec's C++ function and source location."""
    stripped = _CPP_PREFIX.sub("", " ".join(str(e).split()))
    return reason_of(e, path) if stripped == str(e) else f"{type(e).__name__}: {clean(stripped, path)}"


def _open(path: str):
    from torchcodec.decoders import VideoDecoder

    return VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC")


def _check_times(path: str, ids: List[int], pts: np.ndarray, index) -> None:
    """The frames TorchCodec returned are the ones the index places at ``ids`` (else VideoError)."""
    want = index.start_time + index.times[ids]
    tol = 1e-3 if index.num_frames < 2 else min(1e-3, 0.5 * float(np.diff(index.times).min()))
    off = np.abs(np.asarray(pts, dtype=np.float64) - want)
    if off.size and off.max() > tol:
        k = int(off.argmax())
        raise VideoError(path, f"torchcodec returned the frame shown at {pts[k] - index.start_time:.3f} s for "
                               f"frame {ids[k]} (shown at {index.times[ids[k]]:.3f} s)")


def read(path: str, ids: np.ndarray, index) -> Decoded:
    ids = [int(i) for i in ids]
    try:
        with native_stderr.captured():
            dec = _open(path)
            n = dec.metadata.num_frames  # exact mode: counted from the packets, like the index
            if n != index.num_frames:
                raise VideoError(path, f"torchcodec counts {n} frames where the stream has {index.num_frames}")
            if not ids:
                return Decoded()
            try:
                batch = dec.get_frames_at(indices=ids)
            except RuntimeError as e:  # a frame does not decode, or the stream ends early: find where
                del dec
                return _read_until_break(path, ids, index, e)
            frames, pts = batch.data.numpy(), batch.pts_seconds.numpy()
            del dec, batch
    except VideoError:
        raise
    except Exception as e:  # RuntimeError / ValueError from the C++ decoder
        raise VideoError(path, "torchcodec: " + _reason(e, path)) from None
    _check_times(path, ids, pts, index)
    return Decoded(frames={i: frames[k] for k, i in enumerate(ids)})  # NHWC: each frame contiguous


def _read_until_break(path: str, ids: List[int], index, error: RuntimeError) -> Decoded:
    """Frame by frame up to the first that fails; then where a front-to-back decode stops
    (``stopped_at``: the first frame that does not decode), as the PyAV backend reports it."""
    out, bad = Decoded(), -1
    dec = _open(path)
    for i in ids:
        try:
            f = dec.get_frame_at(i)
        except RuntimeError as e:
            bad, error = i, e
            break
        _check_times(path, [i], np.array([f.pts_seconds]), index)
        out.frames[i] = f.data.numpy()
    if bad < 0:  # every frame decodes alone: the batch failed for another reason
        raise VideoError(path, "torchcodec: " + _reason(error, path))
    start = max(out.frames) + 1 if out.frames else 0
    dec, k = _open(path), bad
    for j in range(start, bad):  # decoding forward from the last good frame (no seek between them)
        try:
            dec.get_frame_at(j)
        except RuntimeError:
            k = j
            break
    out.stopped_at, out.stop_reason = k, _reason(error, path)
    return out
