"""PyAV (FFmpeg) backend: reads every container and codec FFmpeg knows; the reference.

Frames are identified by their timestamps in the frame index, so a seek lands
on the right frame even after timestamp gaps or with B-frames, and a stream
that breaks mid-way keeps the frames decoded before the break.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np

from ..errors import VideoError, reason_of
from . import Decoded

SEEK_MARGIN_SECONDS = 2.0  # without key-frame flags: seek this far before the first wanted frame
# Containers never sought: after a seek in an MPEG program stream FFmpeg stamps the frames wrongly (a frame
# showing frame 30 carried frame 33's timestamp, so it passed every check) or drops some (tests/data/
# test_keyframe_seek.py). They are read from the start.
NEVER_SEEK = {"mpeg": "MPEG program stream"}


def unavailable() -> str:
    try:
        import av  # noqa: F401
    except ImportError as e:
        return f"PyAV is not installed ({e})"
    return ""


def refuses(index) -> str:
    return ""


def rotate(img: np.ndarray, rotation) -> np.ndarray:
    """Apply the display-matrix rotation (degrees counter-clockwise), as FFmpeg players do."""
    k = int(round((rotation or 0) / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


def to_rgb(frame, reformatter=None) -> np.ndarray:
    """A PyAV frame -> (H, W, 3) uint8 RGB with the display rotation applied. Pass a reused
    ``av.video.reformatter.VideoReformatter``: a new colour converter per frame costs more
    than decoding small videos."""
    rgb = reformatter.reformat(frame, format="rgb24") if reformatter is not None else frame.reformat(format="rgb24")
    return np.ascontiguousarray(rotate(rgb.to_ndarray(), getattr(frame, "rotation", 0)))  # rows may be padded


class SeekLost(Exception):
    """After a seek, the first frame's timestamp is not in the index: where we are is unknown."""


def decoded_frames(path: str, index, start_tick=None, threads: str = "SLICE",
                   thread_count: int = 0) -> Iterator[Tuple[int, object]]:
    """``(frame id, av.VideoFrame)`` in presentation order, from the start or from the key frame
    before ``start_tick``.

    The decoder emits frames in presentation order, so ids count output frames. After a seek
    the first frame is placed by its timestamp (looked up in the index), and every later one
    must carry the timestamp of the id it is counted as: a decoder that drops frames after a
    seek (FFmpeg's MPEG-1/2 in program streams does) would shift every id. Raises
    :class:`SeekLost` when a frame cannot be placed or does not match. AVI is the exception:
    its packets carry decode-order stamps (1, 3, 2, ...), so there only the first frame is
    placed (AVI seeks land on its index's key frames). Decoding errors propagate: callers
    decide what a broken stream means. ``threads``: FFmpeg's thread type; ``thread_count`` 0:
    FFmpeg's choice (one per core; "SLICE" always uses one).
    """
    import av

    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = threads
        if threads == "SLICE":
            stream.codec_context.thread_count = 1
        elif thread_count:
            stream.codec_context.thread_count = int(thread_count)
        if start_tick is not None:
            container.seek(int(start_tick), stream=stream, backward=True, any_frame=False)
        fid, check = -1, start_tick is not None and "avi" not in index.container.split(",")
        for frame in container.decode(stream):
            if start_tick is None or (fid >= 0 and not check):
                fid += 1
            else:
                t = frame.pts if frame.pts is not None else frame.dts
                at = -1 if t is None else frame_id(index, int(t))
                if at < 0 or (fid >= 0 and at != fid + 1):
                    raise SeekLost()
                fid = at
            yield fid, frame


def frame_id(index, tick: int) -> int:
    """The id of the frame stamped ``tick`` in the index (-1: none is): a binary search of the sorted
    stamps, not a table built for every read."""
    i = int(np.searchsorted(index.ticks, tick))
    return i if i < index.ticks.size and int(index.ticks[i]) == tick else -1


def seek_tick(index, first: int):
    """Where to start decoding for frame ``first``: the timestamp of the last key frame at or before it
    (one key frame earlier when frames may depend on the previous group of pictures), or None to read
    from the start. Files without key-frame flags fall back to a fixed margin before the frame; files
    whose frames share timestamps, and :data:`NEVER_SEEK` containers, are always read from the start."""
    if index.repeated_ticks or NEVER_SEEK.keys() & set(index.container.split(",")):
        return None
    if index.keys is None:
        margin = int(SEEK_MARGIN_SECONDS * max(index.fps, 1.0))
        return int(index.ticks[first - margin]) if first > 2 * margin else None
    j = int(np.searchsorted(index.keys, first, side="right")) - 1 - int(index.open_gop)
    return int(index.ticks[index.keys[j]]) if j >= 0 and index.keys[j] > 0 else None


def read(path: str, ids: np.ndarray, index, seek: bool = True) -> Decoded:
    """Decode frames ``ids`` (sorted, unique), from the key frame before the first one (:func:`seek_tick`);
    a stream that breaks stops the read (``Decoded.stopped_at``)."""
    out = Decoded()
    if not len(ids):
        return out
    wanted, first, last = set(int(i) for i in ids), int(ids[0]), int(ids[-1])
    start_tick = seek_tick(index, first) if seek else None
    try:
        from av.video.reformatter import VideoReformatter

        reformatter, seen = VideoReformatter(), -1
        it = decoded_frames(path, index, start_tick)
        while True:
            try:
                fid, frame = next(it)
            except StopIteration:
                break
            except SeekLost:
                return read(path, ids, index, seek=False)
            except Exception as e:  # a corrupt packet: the stream breaks here
                if start_tick is not None:  # how far it decodes is only known from the start
                    return read(path, ids, index, seek=False)
                out.stopped_at, out.stop_reason = seen + 1, reason_of(e, path)
                break
            seen = max(seen, fid)
            if fid in wanted and fid not in out.frames:
                out.frames[fid] = to_rgb(frame, reformatter)
            if fid >= last:
                break
    except VideoError:
        raise
    except Exception as e:  # av.error.* on open, MemoryError on absurd headers, ...
        raise VideoError(path, "pyav: " + reason_of(e, path)) from None
    if start_tick is not None and (seen < first or len(out.frames) < len(wanted)):
        return read(path, ids, index, seek=False)  # the seek landed past the frames: read from the start
    if out.stopped_at < 0 and seen < last:
        out.stopped_at, out.stop_reason = seen + 1, "the stream ends before its last packets"
    return out
