"""decord backend: fast random access for the common containers (MP4/MOV, MKV/WebM, AVI, FLV).

decord 0.6 (its last release, 2021) returns wrong frames for some files
without any error. Measured against a sequential PyAV decode
(tests/data/test_backend_matrix.py), it is refused for:

* MPEG program and transport streams (``.mpg``, ``.ts``): frame i is another
  frame after a seek, and in transport streams even when reading from the start;
* MPEG-4 Part 2 (DivX/XviD) with B-frames: wrong frames after a seek;
* H.264 in AVI: a wrong last frame (B-frames are invisible in AVI packets).

Its C++ log lines go to vidrec's debug log, not the console.
"""
from __future__ import annotations

import numpy as np

from ..errors import VideoError, native_stderr, reason_of
from . import Decoded

REFUSED_CONTAINERS = {"mpeg": "MPEG program stream", "mpegts": "MPEG transport stream",
                      "flv": "FLV file (the last frame after a seek is another frame)"}


def unavailable() -> str:
    try:
        import decord  # noqa: F401
    except ImportError as e:
        return f"decord is not installed ({e})"
    return ""


def refuses(index) -> str:
    for name, what in REFUSED_CONTAINERS.items():
        if name in index.container.split(","):
            return f"decord mis-seeks in an {what} ({index.container})"
    if index.repeated_ticks:
        return "several frames share a timestamp: decord seeks by timestamps"
    if index.codec == "mpeg4" and index.reordered:
        return "decord returns wrong frames after a seek in MPEG-4 Part 2 with B-frames"
    if index.codec == "h264" and "avi" in index.container.split(","):
        return "decord returns a wrong last frame for H.264 in AVI (B-frames do not show in AVI packets)"
    return ""


def read(path: str, ids: np.ndarray, index) -> Decoded:
    import decord

    try:
        with native_stderr.captured():
            # num_threads=1: several VP9 files only decode single-threaded, and
            # DataLoader workers already give the parallelism.
            vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            n = len(vr)
            if n != index.num_frames:
                raise VideoError(path, f"decord counts {n} frames where the stream has {index.num_frames}")
            batch = vr.get_batch([int(i) for i in ids]).asnumpy() if len(ids) else None
            del vr
    except VideoError:
        raise
    except Exception as e:  # decord raises RuntimeError / DECORDError subclasses
        raise VideoError(path, "decord: " + reason_of(e, path)) from None
    return Decoded(frames={int(i): batch[k] for k, i in enumerate(ids)} if batch is not None else {})
