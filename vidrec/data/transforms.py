"""Spatial transforms on uint8 frames (T, H, W, 3); float conversion happens on the model's device.

Work happens on the smallest tensor: training crops the source region in
uint8 and resizes only that region; testing resizes each decoded frame once
(in uint8), and the loader ships those frames, not the 30 views cut from them.
Clips stay uint8 through the loader (a quarter of float32's bytes through worker
shared memory and the host-to-device copy); :func:`to_model_input` (and, for the
test views, :class:`ViewCutter`) converts and normalises them where the model
runs, in the model's memory format.
"""
from __future__ import annotations

import functools
import math
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def resize_uint8(frames: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, h, w, 3) uint8, bilinear with antialiasing."""
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    x = frames.permute(0, 3, 1, 2)  # NCHW view of channels-last memory: no copy
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.permute(0, 2, 3, 1)


def normalize(frames: torch.Tensor, mean: Sequence[float], std: Sequence[float],
              memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """uint8 (..., T, H, W, 3) (or float in [0, 255]) -> float32 (..., C, T, H, W), normalised.

    ``channels_last_3d`` (batched input only) keeps the decoder's channel-last
    layout, so the conversion is a single streaming pass with no transpose.
    """
    x = frames.movedim(-1, -4).to(torch.float32, memory_format=memory_format, copy=True)  # never the caller's
    mean, std = tuple(map(float, mean)), tuple(map(float, std))
    if x.dim() == 5 and memory_format == torch.channels_last_3d and x.is_contiguous(memory_format=memory_format):
        # The memory is (B, T, H, W, 3): multiply and add along whole rows of W x 3 factors, which
        # vectorise, instead of broadcasting 3 channels innermost (3x slower on a CPU). The same numbers.
        rows = x.permute(0, 2, 3, 4, 1).flatten(-2)  # a view of x
        scale, shift = affine_rows(mean, std, x.device, x.shape[-1])
        rows.mul_(scale.flatten()).add_(shift.flatten())
        return x
    scale, shift = _affine(mean, std, x.device)
    return x.mul_(scale).add_(shift)


@functools.lru_cache(maxsize=8)
def _affine(mean: Tuple[float, ...], std: Tuple[float, ...], device: torch.device):
    """(x / 255 - mean) / std as one multiply-add per element: (scale, shift), each (3, 1, 1, 1)
    on ``device``; built once, not copied to the device on every batch."""
    std_t = torch.tensor(std, dtype=torch.float32)
    scale = 1.0 / (255.0 * std_t)
    shift = -torch.tensor(mean, dtype=torch.float32) / std_t
    return scale.view(3, 1, 1, 1).to(device), shift.view(3, 1, 1, 1).to(device)


@functools.lru_cache(maxsize=16)
def affine_rows(mean: Tuple[float, ...], std: Tuple[float, ...], device: torch.device, width: int):
    """:func:`_affine`'s factors laid out along an image row of ``width`` pixels: (width, 3) each, to
    multiply channel-last rows (the 3 channels innermost) without a broadcast."""
    return tuple(f.view(3).repeat(width).view(width, 3) for f in _affine(mean, std, device))


def to_model_input(clips, device: torch.device, mean: Sequence[float], std: Sequence[float],
                   memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """Loader batch -> normalised float32 (B, C, T, H, W) on ``device``.

    ``clips`` is uint8 (B, T, H, W, 3), or deferred training crops
    ``{"regions", "plans"}`` (DATA.RESIZE_ON_DEVICE) that are resized here.
    The copy moves uint8 (non-blocking from pinned memory); conversion and
    normalisation run on the device.
    """
    if isinstance(clips, dict):
        return normalize(resize_regions(clips["regions"], clips["plans"], device), mean, std, memory_format)
    if clips.dtype != torch.uint8 or clips.dim() != 5 or clips.shape[-1] != 3:
        raise ValueError(f"expected uint8 clips (B, T, H, W, 3), got {clips.dtype} {tuple(clips.shape)}")
    return normalize(clips.to(device, non_blocking=True), mean, std, memory_format)


def scaled_size(h: int, w: int, short_side: int) -> Tuple[int, int]:
    """(h, w) after scaling the shorter side to ``short_side`` (aspect kept)."""
    f = short_side / min(h, w)
    return (short_side, max(short_side, round(w * f))) if h <= w else (max(short_side, round(h * f)), short_side)


def crop_plan(h: int, w: int, short_side: int, y: int, x: int, size: int):
    """Where :func:`crop_resized` reads and cuts: the source box ``(y0, y1, x0, x1)`` under
    the window (+1 px margin), the size ``(out_h, out_w)`` that box is resized to (the
    full image's scale), and the window's offset ``(oy, ox)`` in the resized box."""
    rh, rw = scaled_size(h, w, short_side)
    fy, fx = rh / h, rw / w
    y0, x0 = max(0, math.floor(y / fy) - 1), max(0, math.floor(x / fx) - 1)
    y1, x1 = min(h, math.ceil((y + size) / fy) + 1), min(w, math.ceil((x + size) / fx) + 1)
    ry, rx = round(y0 * fy), round(x0 * fx)
    out_h, out_w = max(size, round(y1 * fy) - ry), max(size, round(x1 * fx) - rx)
    oy, ox = min(max(0, y - ry), out_h - size), min(max(0, x - rx), out_w - size)
    return (y0, y1, x0, x1), (out_h, out_w), (oy, ox)


def crop_resized(frames: torch.Tensor, short_side: int, y: int, x: int, size: int) -> torch.Tensor:
    """The ``size`` x ``size`` window at (y, x) of the frames resized to ``short_side``,
    computed by resizing only the source region under the window."""
    (y0, y1, x0, x1), out, (oy, ox) = crop_plan(frames.shape[1], frames.shape[2], short_side, y, x, size)
    region = resize_uint8(frames[:, y0:y1, x0:x1], out)
    return region[:, oy:oy + size, ox:ox + size]


def train_transform(frames: torch.Tensor, rng: np.random.Generator, jitter: Sequence[int], crop: int,
                    flip: bool, defer_resize: bool = False, rows: Optional[np.ndarray] = None):
    """Random short-side scale in ``jitter`` (inclusive), random ``crop`` square, optional
    horizontal flip with p=0.5 -> (uint8 clip (T, crop, crop, 3), flipped).

    ``defer_resize`` (DATA.RESIZE_ON_DEVICE) returns instead the uint8 source
    region and its plan, ``{"region", "plan"}``, for :func:`resize_regions` to
    finish on the model's device: the same crop, drawn from the same random numbers.
    ``rows`` (ids into ``frames``) picks the clip's frames out of a decode shared by
    several clips (DATA.TRAIN_CLIPS_PER_VIDEO); only the source region is gathered.
    """
    lo, hi = int(jitter[0]), int(jitter[-1])
    if crop > lo:
        raise ValueError(f"DATA.TRAIN_CROP_SIZE {crop} is larger than the smallest jitter scale {lo}")
    s = int(rng.integers(lo, hi + 1))
    rh, rw = scaled_size(frames.shape[1], frames.shape[2], s)
    y, x = int(rng.integers(0, rh - crop + 1)), int(rng.integers(0, rw - crop + 1))
    flipped = bool(flip and rng.random() < 0.5)
    (y0, y1, x0, x1), (oh, ow), (oy, ox) = crop_plan(frames.shape[1], frames.shape[2], s, y, x, crop)
    region = frames[:, y0:y1, x0:x1]
    if rows is not None:  # index_select: many times faster than advanced indexing here
        region = torch.index_select(region, 0, torch.as_tensor(rows, dtype=torch.long))
    if defer_resize:
        plan = torch.tensor([oh, ow, oy, ox, crop, int(flipped)], dtype=torch.long)
        return {"region": region.contiguous(), "plan": plan}, flipped
    out = resize_uint8(region, (oh, ow))[:, oy:oy + crop, ox:ox + crop]  # what crop_resized does
    if flipped:
        out = out.flip(2)
    return out.contiguous(), flipped


def resize_regions(regions: Sequence[torch.Tensor], plans: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Finish deferred training crops on ``device``: uint8 regions (T, h, w, 3) + plans ->
    float (B, T, crop, crop, 3) in [0, 255] (kept in float: no uint8 rounding)."""
    out = []
    for region, (oh, ow, oy, ox, size, flipped) in zip(regions, plans.tolist()):
        x = region.to(device, non_blocking=True).permute(0, 3, 1, 2).float()  # (T, 3, h, w)
        x = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False, antialias=True)
        x = x[..., oy:oy + size, ox:ox + size]
        out.append((x.flip(-1) if flipped else x).permute(0, 2, 3, 1))
    return torch.stack(out)


def spatial_crop_offsets(rh: int, rw: int, crop: int, num_crops: int):
    """(y, x) of ``num_crops`` crops spread along the long side (left/centre/right or
    top/centre/bottom), centred on the short side; one crop is the centre crop."""
    long_is_w = rw >= rh
    lmax, smax = (rw, rh) if long_is_w else (rh, rw)
    along = [(lmax - crop) // 2] if num_crops == 1 else [(lmax - crop) * i // (num_crops - 1) for i in range(num_crops)]
    across = (smax - crop) // 2
    return [(across, a) if long_is_w else (a, across) for a in along]


def eval_union(frames: torch.Tensor, clips: np.ndarray, short_side: int, crop: int, num_crops: int) -> Dict:
    """Decoded frames (U, H, W, 3) + clips (V_t, T) of row ids into them -> what the test views
    are cut from: ``{"frames": uint8 (U, rh, rw, 3), "rows": (V_t, T), "offsets": (num_crops, 2), "crop"}``.

    Each decoded frame is resized once to ``short_side``; this union is smaller than its
    30 views, so the loader ships it and :class:`ViewCutter` cuts the views where the model runs.
    """
    if crop > short_side:
        raise ValueError(f"DATA.TEST_CROP_SIZE {crop} is larger than DATA.TEST_SHORT_SIDE {short_side}")
    rh, rw = scaled_size(frames.shape[1], frames.shape[2], short_side)
    return {"frames": resize_uint8(frames, (rh, rw)).contiguous(),
            "rows": torch.as_tensor(np.asarray(clips), dtype=torch.long),
            "offsets": torch.tensor(spatial_crop_offsets(rh, rw, crop, num_crops), dtype=torch.long), "crop": crop}


def num_union_views(union: Dict) -> int:
    return union["rows"].shape[0] * union["offsets"].shape[0]


def union_views(union: Dict) -> torch.Tensor:
    """The explicit uint8 views (V_t * num_crops, T, crop, crop, 3) of an :func:`eval_union`;
    view v = clip v // num_crops, crop v % num_crops. The reference :class:`ViewCutter` matches."""
    small, idx, crop = union["frames"], union["rows"], union["crop"]
    offsets = union["offsets"].tolist()
    views = torch.empty((num_union_views(union), idx.shape[1], crop, crop, 3), dtype=torch.uint8)
    for t in range(idx.shape[0]):
        for c, (y, x) in enumerate(offsets):  # gathered straight into place: one copy per view
            torch.index_select(small[:, y:y + crop, x:x + crop], 0, idx[t], out=views[t * len(offsets) + c])
    return views


def eval_transform(frames: torch.Tensor, clips: np.ndarray, short_side: int, crop: int, num_crops: int
                   ) -> torch.Tensor:
    """Decoded frames (U, H, W, 3) + clips (V_t, T) of row ids into them ->
    uint8 views (V_t * num_crops, T, crop, crop, 3); view v = clip v // num_crops, crop v % num_crops."""
    return union_views(eval_union(frames, clips, short_side, crop, num_crops))


class ViewCutter:
    """Test views cut from :func:`eval_union` unions into normalised model input on ``device``.

    Each union crosses to the device once, as uint8; the views are gathered, converted
    and normalised there, ``chunk`` views at a time (0: all of a batch), into one reused
    buffer (fresh float memory costs more than filling it, on a CPU). The input equals
    :func:`to_model_input` of :func:`union_views` bit for bit: the same multiply and add
    per element. On a CPU in channels-last they run frame by frame, while the frame is in
    cache, with the factors laid out along the rows so that they vectorise.
    """

    def __init__(self, device: torch.device, mean: Sequence[float], std: Sequence[float],
                 memory_format: torch.memory_format = torch.contiguous_format, chunk: int = 0):
        self.device, self.memory_format, self.chunk = torch.device(device), memory_format, int(chunk)
        self.mean_std = tuple(map(float, mean)), tuple(map(float, std))
        self.scale, self.shift = _affine(*self.mean_std, self.device)
        self.per_frame = self.device.type == "cpu" and memory_format == torch.channels_last_3d
        self._buf = torch.empty(0, device=self.device)

    def __call__(self, unions: Sequence[Dict]) -> Iterator[torch.Tensor]:
        """Float (n, C, T, crop, crop) inputs for the views of ``unions`` in order (video, clip, crop),
        ``chunk`` at a time; each input is overwritten by the next, so use it first."""
        views = [(u, t, c) for u in unions for t in range(u["rows"].shape[0]) for c in range(u["offsets"].shape[0])]
        step, cur = self.chunk or len(views), None
        for s in range(0, len(views), step):
            part = views[s:s + step]
            size = part[0][0]["crop"]
            out = self._buffer(len(part), part[0][0]["rows"].shape[1], size)
            scale, shift = affine_rows(*self.mean_std, self.device, size)  # (W, 3)
            for k, (u, t, c) in enumerate(part):
                if cur is None or cur[0] is not u:  # the union goes to the device once
                    cur = (u, u["frames"].to(self.device, non_blocking=True),
                           u["rows"].to(self.device, non_blocking=True), u["offsets"].tolist())
                _, frames, rows, offsets = cur
                y, x = offsets[c]
                src = frames[:, y:y + size, x:x + size]
                if self.per_frame:
                    view = out[k].permute(1, 2, 3, 0)  # (T, H, W, 3): the buffer's memory order
                    for f, r in enumerate(rows[t].tolist()):
                        view[f].copy_(src[r]).mul_(scale).add_(shift)
                else:
                    out[k].copy_(torch.index_select(src, 0, rows[t]).movedim(-1, 0))
            yield out if self.per_frame else out.mul_(self.scale).add_(self.shift)

    def _buffer(self, n: int, t: int, size: int) -> torch.Tensor:
        shape = (3, t, size, size)
        if self._buf.shape[1:] != shape or self._buf.shape[0] < n:
            self._buf = torch.empty((n, *shape), device=self.device, memory_format=self.memory_format)
        return self._buf[:n]


def swap_label(label: int, pairs: Optional[Sequence[Sequence[int]]]) -> int:
    """Label of a horizontally flipped clip: swap left/right class pairs (SSv2)."""
    for a, b in pairs or ():
        if label == a:
            return int(b)
        if label == b:
            return int(a)
    return label
