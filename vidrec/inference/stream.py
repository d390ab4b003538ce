"""Chunked decoding: walk a video front to back once and hand out clips as they complete.

Nothing ever holds the whole video. Frames are decoded sequentially with PyAV
(frame ids count from the first decoded frame, like the PyAV path of
:mod:`vidrec.data.decoders`, whose rotation handling is reused); each frame a
pending window may still need is resized to the test short side and
centre-cropped on arrival (the same per-frame operations as
:func:`vidrec.data.transforms.test_transform`), and dropped as soon as no
window can use it. At most ``span`` frames (one window) are buffered, see
:attr:`ClipStream.stats`.

A stream that breaks mid-way (a corrupt packet) ends where decoding stopped:
the windows before it are kept and ``ClipStream.warning`` says what happened.
A file that yields no frame at all raises :class:`~vidrec.data.VideoError`.
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import torch

from ..data.decoders import VideoError, _check_file, _pyav_header, _reason, _rotate
from ..data.sampling import clip_span
from ..data.transforms import resize_uint8, scaled_size, spatial_crop_offsets
from .windows import Window, hop_frames, make_window, window_indices


def to_rgb(frame, reformatter=None) -> np.ndarray:
    """A PyAV frame -> (H, W, 3) uint8 RGB, display rotation applied. Pass a reused
    ``av.video.reformatter.VideoReformatter`` (``FrameReader.reformatter``): creating
    the colour converter anew for every frame costs more than decoding small videos."""
    rgb = reformatter.reformat(frame, format="rgb24") if reformatter is not None else frame.reformat(format="rgb24")
    return np.ascontiguousarray(_rotate(rgb.to_ndarray(), getattr(frame, "rotation", 0)))  # rows may be padded


class FrameReader:
    """Iterate ``(frame_id, av.VideoFrame)`` over a video; remembers fps, header count and a stop reason."""

    def __init__(self, path):
        self.path = str(path)
        _check_file(self.path)
        self.fps, self.header_frames, self.frames_read, self.warning = 0.0, 0, 0, ""
        self.reformatter = None
        try:
            import av

            with av.open(self.path, metadata_errors="ignore") as c:
                if not c.streams.video:
                    raise VideoError(self.path, "no video stream (audio-only or not a video)")
                self.header_frames, self.fps = _pyav_header(c.streams.video[0], c)
        except VideoError:
            raise
        except Exception as e:  # av.error.*: not a container PyAV understands
            raise VideoError(self.path, "pyav: " + _reason(e)) from None

    def __iter__(self):
        import av
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()
        try:
            container = av.open(self.path, metadata_errors="ignore")
        except Exception as e:
            raise VideoError(self.path, "pyav: " + _reason(e)) from None
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads: faster on real footage
            it = container.decode(stream)
            while True:
                try:
                    frame = next(it)
                except StopIteration:
                    break
                except Exception as e:  # corrupt packet: keep what decoded so far
                    if self.frames_read == 0:
                        raise VideoError(self.path, "no frame could be decoded (" + _reason(e) + ")") from None
                    self.warning = f"decoding stopped after {self.frames_read} frames: {_reason(e)}"
                    break
                yield self.frames_read, frame
                self.frames_read += 1


class ClipStream:
    """Sliding windows of one video, decoded in a single bounded-memory pass.

    Iterating yields ``(Window, clip)`` with ``clip`` a uint8 tensor
    ``(num_frames, crop, crop, 3)`` (stack them and make model input with
    :func:`vidrec.data.transforms.to_model_input`). Windows start every ``hop``
    frames (or ``hop_seconds``; default: one window length, i.e. no overlap);
    ``cover_end`` adds a last window aligned to the end of the video. After
    iteration: ``num_frames_decoded``, ``fps``, ``hop``, ``warning`` and
    ``stats`` (``max_buffered`` frames held at once, frames ``converted``).
    """

    def __init__(self, path, num_frames: int, rate: int, short_side: int, crop: int,
                 hop: Optional[int] = None, hop_seconds: Optional[float] = None, cover_end: bool = False,
                 short: str = "loop"):
        if crop > short_side:
            raise ValueError(f"DATA.TEST_CROP_SIZE {crop} is larger than DATA.TEST_SHORT_SIDE {short_side}")
        self.reader = FrameReader(path)
        self.path, self.fps = self.reader.path, self.reader.fps
        self.num_frames, self.rate, self.short = int(num_frames), int(rate), short
        self.span = clip_span(self.num_frames, self.rate)
        self.hop = hop_frames(hop, hop_seconds, self.fps, default=self.span)
        self.short_side, self.crop, self.cover_end = int(short_side), int(crop), bool(cover_end)
        self.num_frames_decoded = 0
        self.stats: Dict[str, int] = {"max_buffered": 0, "converted": 0}

    @property
    def warning(self) -> str:
        return self.reader.warning

    def _needed(self, f: int) -> bool:
        """Can a regular window (or a possible short-video / end window) use frame ``f``?"""
        if self.cover_end or f < self.span:
            return True
        s0 = max(0, (f - self.span) // self.hop * self.hop)
        return any((f - s) % self.rate == 0 for s in range(s0, f + 1, self.hop) if s + self.span > f)

    def _prepare(self, frame) -> torch.Tensor:
        img = torch.from_numpy(to_rgb(frame, self.reader.reformatter))
        rh, rw = scaled_size(img.shape[0], img.shape[1], self.short_side)
        (y, x), = spatial_crop_offsets(rh, rw, self.crop, 1)
        small = resize_uint8(img[None], (rh, rw))[0]
        return small[y:y + self.crop, x:x + self.crop].contiguous()

    def _clip(self, buf: Dict[int, torch.Tensor], index: int, start: int, n: int) -> Tuple[Window, torch.Tensor]:
        ids = window_indices(start, n, self.num_frames, self.rate, self.short)
        return make_window(index, start, n, self.span, self.fps), torch.stack([buf[int(i)] for i in ids])

    def __iter__(self) -> Iterator[Tuple[Window, torch.Tensor]]:
        buf: Dict[int, torch.Tensor] = {}
        next_start, k, last_start = 0, 0, None
        for f, frame in self.reader:
            # Drop what no window can use any more: pending windows start at next_start or
            # later, an end-aligned one at (video length - span) > f - span.
            keep_from = min(next_start, f + 1 - self.span) if self.cover_end else next_start
            for old in [i for i in buf if i < keep_from]:
                del buf[old]
            if self._needed(f):
                buf[f] = self._prepare(frame)
                self.stats["converted"] += 1
            self.stats["max_buffered"] = max(self.stats["max_buffered"], len(buf))
            while next_start + self.span - 1 <= f:
                yield self._clip(buf, k, next_start, f + 1)
                last_start, next_start, k = next_start, next_start + self.hop, k + 1
        n = self.num_frames_decoded = self.reader.frames_read
        if n == 0:
            raise VideoError(self.path, "no frame could be decoded")
        if last_start is None:  # shorter than one window: one looped window from frame 0
            yield self._clip(buf, 0, 0, n)
        elif self.cover_end and last_start != n - self.span:
            yield self._clip(buf, k, n - self.span, n)
