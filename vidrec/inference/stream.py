"""Chunked decoding: walk a video front to back once and hand out clips as they complete.

Nothing ever holds the whole video. Frames come from
:class:`vidrec.data.decoders.FrameStream` (the same frame ids and presentation
times as every other vidrec tool); each frame a window may still need is
resized to the test short side and centre-cropped on arrival (the same
per-frame operations as the test transform), and dropped as soon as no window
can use it. At most ``span`` frames (one window) are buffered, see
:attr:`ClipStream.stats`.

Window starts are planned up front from the frame index (a hop in frames, or in
seconds of presentation time). A stream that breaks mid-way ends where decoding
stopped (``DATA.PARTIAL_VIDEO keep``): the windows before it are kept, an
end-aligned window is re-aligned to the frames that decoded, and
``ClipStream.warning`` says what happened. A file that yields no frame raises
:class:`~vidrec.data.VideoError`.
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Set, Tuple

import torch

from ..data.decoders import FrameStream, to_rgb
from ..data.errors import VideoError
from ..data.sampling import clip_span
from ..data.transforms import resize_uint8, scaled_size, spatial_crop_offsets
from .windows import Window, hop_frames, make_window, time_starts, window_indices, window_starts


class ClipStream:
    """Sliding windows of one video, decoded in a single bounded-memory pass.

    Iterating yields ``(Window, clip)`` with ``clip`` a uint8 tensor
    ``(num_frames, crop, crop, 3)`` (stack them and make model input with
    :func:`vidrec.data.transforms.to_model_input`). Windows start every ``hop``
    frames, or every ``hop_seconds`` of presentation time (default: one window
    length, i.e. no overlap); ``cover_end`` adds a last window aligned to the end
    of the video. After iteration: ``num_frames_decoded``, ``duration`` (s),
    ``fps``, ``hop`` (frames, or None for a hop in seconds), ``warning`` and
    ``stats`` (``max_buffered`` frames held at once, frames ``converted``).
    """

    def __init__(self, path, num_frames: int, rate: int, short_side: int, crop: int,
                 hop: Optional[int] = None, hop_seconds: Optional[float] = None, cover_end: bool = False,
                 short: str = "loop", partial: str = "keep"):
        if crop > short_side:
            raise ValueError(f"DATA.TEST_CROP_SIZE {crop} is larger than DATA.TEST_SHORT_SIDE {short_side}")
        self.reader = FrameStream(path, partial=partial)
        self.index = self.reader.index
        self.path, self.fps = self.reader.path, self.reader.fps
        self.num_frames, self.rate, self.short = int(num_frames), int(rate), short
        self.span = clip_span(self.num_frames, self.rate)
        n = self.index.num_frames
        if hop_seconds is not None:
            if hop is not None:
                raise ValueError("give the hop in frames or in seconds, not both")
            self.hop = None
            self.starts = time_starts(self.index.times, n, self.span, hop_seconds)
        else:
            self.hop = hop_frames(hop, None, self.fps, default=self.span)
            self.starts = window_starts(n, self.span, self.hop)
        self.short_side, self.crop, self.cover_end = int(short_side), int(crop), bool(cover_end)
        self.num_frames_decoded = 0
        self.stats: Dict[str, int] = {"max_buffered": 0, "converted": 0}
        self._needed: Set[int] = {int(i) for s in self.starts
                                  for i in window_indices(s, n, self.num_frames, self.rate, self.short)}

    @property
    def warning(self) -> str:
        return self.reader.warning

    @property
    def duration(self) -> float:
        """Seconds of the frames that decoded (from presentation times)."""
        return self.index.duration(self.num_frames_decoded)

    def _prepare(self, frame) -> torch.Tensor:
        img = torch.from_numpy(to_rgb(frame, self.reader.reformatter))
        rh, rw = scaled_size(img.shape[0], img.shape[1], self.short_side)
        (y, x), = spatial_crop_offsets(rh, rw, self.crop, 1)
        small = resize_uint8(img[None], (rh, rw))[0]
        return small[y:y + self.crop, x:x + self.crop].contiguous()

    def _clip(self, buf: Dict[int, torch.Tensor], index: int, start: int, n: int,
              known: int = -1) -> Tuple[Window, torch.Tensor]:
        ids = window_indices(start, n, self.num_frames, self.rate, self.short)
        window = make_window(index, start, n, self.span, self.index, known)
        return window, torch.stack([buf[int(i)] for i in ids])

    def __iter__(self) -> Iterator[Tuple[Window, torch.Tensor]]:
        buf: Dict[int, torch.Tensor] = {}
        pending = list(self.starts)
        k, last_start = 0, None
        for f, _, frame in self.reader:
            # Drop what no window can use any more: pending windows start at pending[0] or
            # later, an end-aligned one at (video length - span) > f - span.
            keep_from = pending[0] if pending else f + 1
            if self.cover_end:
                keep_from = min(keep_from, f + 1 - self.span)
            for old in [i for i in buf if i < keep_from]:
                del buf[old]
            if f in self._needed or self.cover_end or f < self.span:
                buf[f] = self._prepare(frame)
                self.stats["converted"] += 1
            self.stats["max_buffered"] = max(self.stats["max_buffered"], len(buf))
            while pending and pending[0] + self.span - 1 <= f:
                last_start = pending.pop(0)
                yield self._clip(buf, k, last_start, f + 1, known=self.index.num_frames)
                k += 1
        n = self.num_frames_decoded = self.reader.frames_read
        if n == 0:
            raise VideoError(self.path, "no frame could be decoded")
        if last_start is None:  # shorter than one window (or broken before the first ended): frame 0, looped
            yield self._clip(buf, 0, 0, n)
        elif self.cover_end and last_start != n - self.span:
            yield self._clip(buf, k, n - self.span, n)
