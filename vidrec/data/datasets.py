"""Datasets: training clips with bad-video replacement, multi-view test items.

Items follow the engine contract (see :func:`build_dataset`). Decoders are
opened inside ``__getitem__`` only, so the dataset is safe to fork into
DataLoader workers; failure counts travel with the items (``n_failed``)
because worker-side counters would be invisible to the engine.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from . import lists
from .decoders import PARTIAL_POLICIES, VideoError, decoder_order, read_frames
from .sampling import SHORT_VIDEO_MODES, eval_clips, train_clip
from .transforms import eval_union, num_union_views, swap_label, train_transform, union_views

logger = logging.getLogger("vidrec.data")
SPLITS = ("train", "val", "test")
DATASETS = ("list", "folder", "kinetics", "ssv2")


class FailRateError(lists.ListError, RuntimeError):
    """More video loads failed than ``DATA.MAX_FAIL_RATE`` allows: the list needs cleaning.

    A :class:`ListError` (the tools print it as one ``error:`` line); also a RuntimeError, as before.
    """


def check_failure_rate(n_failed: int, n_loaded: int, max_rate: float) -> float:
    """Fraction of failed video loads among all attempts; :class:`FailRateError` when above ``max_rate``."""
    total = n_failed + n_loaded
    rate = n_failed / total if total else 0.0
    if rate > max_rate:
        raise FailRateError(f"{n_failed} of {total} video loads failed ({rate:.1%}), more than DATA.MAX_FAIL_RATE "
                            f"= {max_rate:.1%}; run 'vidrec check-videos' on the list and remove the broken files "
                            f"(its quarantine list names them)")
    return rate


class VideoDataset(Dataset):
    """Videos + labels; ``train=True`` gives random clips, else all test views of a video."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], cfg, train: bool,
                 class_names: Optional[List[str]] = None, num_classes: Optional[int] = None):
        d, t = cfg.DATA, cfg.TEST
        self.paths, self.labels, self.train = list(paths), [int(x) for x in labels], train
        self.class_names = class_names
        self.num_classes = int(num_classes if num_classes is not None else cfg.MODEL.NUM_CLASSES)
        if d.SHORT_VIDEO not in SHORT_VIDEO_MODES:
            raise ValueError(f"DATA.SHORT_VIDEO must be one of {SHORT_VIDEO_MODES}, got {d.SHORT_VIDEO!r}")
        # Plain values only: the dataset is pickled into workers.
        self.num_frames, self.rate, self.short = int(d.NUM_FRAMES), int(d.SAMPLING_RATE), d.SHORT_VIDEO
        self.decoders = decoder_order(list(d.DECODER), bool(d.DECODER_FALLBACK))  # ValueError names the choices
        if d.PARTIAL_VIDEO not in PARTIAL_POLICIES:
            raise ValueError(f"DATA.PARTIAL_VIDEO must be one of {PARTIAL_POLICIES}, got {d.PARTIAL_VIDEO!r}")
        self.partial = d.PARTIAL_VIDEO
        self.jitter, self.crop, self.flip = list(d.TRAIN_JITTER_SCALES), int(d.TRAIN_CROP_SIZE), bool(d.RANDOM_FLIP)
        self.swap_pairs = [list(p) for p in d.FLIP_SWAP_PAIRS]
        self.test_short, self.test_crop = int(d.TEST_SHORT_SIDE), int(d.TEST_CROP_SIZE)
        self.num_views, self.num_crops = int(t.NUM_ENSEMBLE_VIEWS), int(t.NUM_SPATIAL_CROPS)
        self.max_retries = int(d.MAX_RETRIES)
        self.defer_resize = bool(d.RESIZE_ON_DEVICE) and train
        self.clips_per_video = int(d.TRAIN_CLIPS_PER_VIDEO)
        self.share_frames = bool(d.TRAIN_CLIPS_SHARE_FRAMES)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        if isinstance(key, (tuple, list)):
            index, seed = int(key[0]), key[1]
        else:
            index, seed = int(key), None
        return self._train_item(index, seed) if self.train else self._test_item(index)

    # -- training
    def load_clips(self, index: int, rng: np.random.Generator) -> List[tuple]:
        """DATA.TRAIN_CLIPS_PER_VIDEO augmented clips of video ``index`` -> [(clip, label)]; raises VideoError.

        ``rng`` draws every clip's start, then every clip's crop and flip (for one clip: as it always
        did); the union of the clips' frames is decoded once. With DATA.TRAIN_CLIPS_SHARE_FRAMES
        one start is drawn and the k clips are k augmentations of its frames."""
        k, plan = self.clips_per_video, {}
        starts = 1 if self.share_frames else k

        def frames_needed(n: int):
            plan["clips"] = np.stack([train_clip(n, self.num_frames, self.rate, rng, self.short)
                                      for _ in range(starts)])
            plan["uniq"] = np.unique(plan["clips"])
            return plan["clips"][0] if starts == 1 else plan["uniq"]

        frames, info = read_frames(self.paths[index], frames_needed, backend=self.decoders, partial=self.partial)
        note_read(self.paths[index], info)
        out = []
        for rows in [None] * k if starts == 1 else np.searchsorted(plan["uniq"], plan["clips"]):
            clip, flipped = train_transform(frames, rng, self.jitter, self.crop, self.flip, self.defer_resize, rows)
            out.append((clip, swap_label(self.labels[index], self.swap_pairs) if flipped else self.labels[index]))
        return out

    def _train_item(self, index: int, seed):
        rng = np.random.default_rng(seed)
        n_failed = 0
        for _ in range(self.max_retries + 1):
            try:
                clips = self.load_clips(index, rng)
                if len(clips) == 1:
                    return (*clips[0], index, n_failed)
                return [c for c, _ in clips], [y for _, y in clips], index, n_failed
            except VideoError as e:
                n_failed += 1
                logger.warning("skipping unreadable video %s (%s); using another sample", e.path, e.reason)
                last = e
                index = int(rng.integers(len(self)))
        raise RuntimeError(f"{n_failed} videos in a row failed to load (DATA.MAX_RETRIES={self.max_retries}); "
                           f"last: {last}. Check the list with tools/check_videos.py")

    # -- testing
    def load_views(self, index: int) -> torch.Tensor:
        """All test views of video ``index``, uint8 (V, T, H, W, 3), decoding the union of their frames once."""
        return union_views(self.load_union(index)[0])

    def load_union(self, index: int) -> tuple:
        """(:func:`~vidrec.data.transforms.eval_union` of video ``index``, read info); raises VideoError."""
        return load_test_union(self.paths[index], self.num_frames, self.rate, self.num_views, self.num_crops,
                               self.test_short, self.test_crop, self.short, self.decoders, self.partial)

    def _test_item(self, index: int) -> Dict:
        item = {"label": self.labels[index], "index": index, "error": "", "warning": "", "path": self.paths[index]}
        try:
            item["union"], info = self.load_union(index)
            item["warning"] = info.get("warning", "")
        except VideoError as e:
            logger.warning("cannot evaluate video %s (%s)", e.path, e.reason)
            c = self.test_crop  # no rows: no views
            item["union"] = {"frames": torch.zeros((0, c, c, 3), dtype=torch.uint8),
                             "rows": torch.zeros((0, self.num_frames), dtype=torch.long),
                             "offsets": torch.zeros((self.num_crops, 2), dtype=torch.long), "crop": c}
            item["error"] = e.reason
        return item


_warned: set = set()


def note_read(path: str, info: Dict) -> None:
    """Say once per process what a read had to work around: a broken stream, a refused or failed backend."""
    if info.get("warning") and (path, "w") not in _warned:
        _warned.add((path, "w"))
        logger.warning("%s: %s", path, info["warning"])
    if ("fallback_reason" in info or "refused" in info) and (path, "f") not in _warned:
        _warned.add((path, "f"))
        why = info.get("fallback_reason") or "; ".join(f"{k}: {v}" for k, v in info["refused"].items())
        logger.debug("%s: decoded with %s (%s)", path, info["backend"], why)


def load_test_views(path: str, num_frames: int, rate: int, num_views: int, num_crops: int, short_side: int,
                    crop: int, short: str = "loop", decoders: Sequence[str] = ("decord", "pyav"),
                    partial: str = "keep") -> tuple:
    """The test protocol's views of one video -> (uint8 (V, T, crop, crop, 3), read info).

    ``num_views`` clips spread uniformly over the video times ``num_crops`` crops
    along the long side; the union of their frames is decoded once. Used by
    ``Predictor`` (``--multiview``); the evaluator cuts the same views from
    :func:`load_test_union` on the model's device.
    """
    union, info = load_test_union(path, num_frames, rate, num_views, num_crops, short_side, crop, short, decoders,
                                  partial)
    return union_views(union), info


def load_test_union(path: str, num_frames: int, rate: int, num_views: int, num_crops: int, short_side: int,
                    crop: int, short: str = "loop", decoders: Sequence[str] = ("decord", "pyav"),
                    partial: str = "keep") -> tuple:
    """:func:`load_test_views` before the views are cut: (:func:`~vidrec.data.transforms.eval_union`, read info)."""
    plan = {}

    def frames_needed(n: int):
        plan["clips"] = eval_clips(n, num_frames, rate, num_views, short)
        plan["uniq"] = np.unique(plan["clips"])
        return plan["uniq"]

    frames, info = read_frames(path, frames_needed, backend=list(decoders), partial=partial)
    note_read(path, info)
    rows = np.searchsorted(plan["uniq"], plan["clips"])
    return eval_union(frames, rows, short_side, crop, num_crops), info


def collate_train(items: List[tuple]) -> tuple:
    """Train items -> (clips, labels, indices, n_failed); deferred crops (DATA.RESIZE_ON_DEVICE)
    have per-video sizes, so they travel as ``{"regions": [...], "plans": (B, 6)}``.

    Items of k clips (DATA.TRAIN_CLIPS_PER_VIDEO > 1) are flattened, a video's clips side by side:
    B * k clips, labels and indices; ``n_failed`` stays one per video."""
    if isinstance(items[0][1], list):
        flat = [(c, y, it[2], 0) for it in items for c, y in zip(it[0], it[1])]
        return (*collate_train(flat)[:3], torch.tensor([it[3] for it in items]))
    clips = [it[0] for it in items]
    if isinstance(clips[0], dict):
        batch = {"regions": [c["region"] for c in clips], "plans": torch.stack([c["plan"] for c in clips])}
    else:
        batch = torch.stack(clips)
    return (batch, *default_collate([it[1:] for it in items]))


def collate_test(items: List[Dict]) -> Dict:
    """Multi-view items -> ``{"unions": [...], "video_index": (views,), ...}``: unions differ in size
    per video, so they stay a list (a :class:`~vidrec.data.transforms.ViewCutter` cuts their views,
    video by video); failed videos contribute no views."""
    counts = torch.tensor([num_union_views(it["union"]) for it in items], dtype=torch.long)
    indices = torch.tensor([it["index"] for it in items], dtype=torch.long)
    return {"unions": [it["union"] for it in items],
            "video_index": torch.repeat_interleave(indices, counts),
            "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),
            "indices": indices,
            "errors": [(it["index"], it["path"], it["error"]) for it in items if it["error"]],
            "warnings": [(it["index"], it["path"], it["warning"]) for it in items if it.get("warning")]}


def _class_names(cfg, default: Optional[str], beside: Optional[Path] = None) -> Optional[List[str]]:
    if cfg.MODEL.CLASS_NAMES:
        return lists.read_class_names(lists.find_list(cfg.MODEL.CLASS_NAMES, "MODEL.CLASS_NAMES"))
    if beside is not None and (beside.parent / "classes.txt").is_file():
        return lists.read_class_names(beside.parent / "classes.txt")
    return lists.read_class_names(lists.LISTS_DIR / default) if default else None


def build_dataset(cfg, split: str) -> VideoDataset:
    """Dataset for ``split`` in {"train", "val", "test"} from ``cfg.DATA`` / ``cfg.TEST``.

    train items: ``(clip, label, index, n_failed)``; key ``i`` or ``(i, seed)``; batch with :func:`collate_train`
    (DATA.TRAIN_CLIPS_PER_VIDEO k > 1: ``([k clips], [k labels], index, n_failed)``).
    val/test items: ``{"union", "label", "index", "error", "warning", "path"}``, batch with :func:`collate_test`;
    the union is the decoded, resized frames + the view plan (:func:`~vidrec.data.transforms.eval_union`).
    Clips and union frames are uint8 ``(..., T, H, W, 3)``; the engine turns them into normalised model
    input on its device with :func:`~vidrec.data.transforms.to_model_input` / ``ViewCutter``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    d = cfg.DATA
    kind = d.DATASET
    if kind not in DATASETS:
        raise ValueError(f"DATA.DATASET must be one of {DATASETS}, got {kind!r}")
    name, key = {"train": (d.TRAIN_LIST, "DATA.TRAIN_LIST"), "val": (d.VAL_LIST, "DATA.VAL_LIST"),
                 "test": (d.TEST_LIST, "DATA.TEST_LIST") if d.TEST_LIST else (d.VAL_LIST, "DATA.VAL_LIST")}[split]
    root = d.PATH_TO_DATA_DIR
    class_names, src = None, None
    if kind == "folder":
        folder = lists.resolve_under(root, name, d.ALLOW_OUTSIDE_ROOT) if name else os.path.abspath(root or ".")
        rel, labels, class_names = lists.scan_folder(folder)
        rel = [os.path.relpath(os.path.join(folder, p), os.path.abspath(root or ".")) for p in rel]
        src = folder
    else:
        src = lists.find_list(name, key)
        if kind == "kinetics" and lists.is_kinetics_csv(src):
            class_names = _class_names(cfg, "kinetics400_classes.txt")
            rel, labels, missing = lists.read_kinetics_csv(src, root, class_names)
            if missing:
                logger.warning("%s: %d of %d videos are missing under %s (skipped)", src, len(missing),
                               len(missing) + len(rel), root)
        elif kind == "ssv2" and src.suffix.lower() == ".json":
            if not d.LABELS_FILE:
                raise lists.ListError("DATA.LABELS_FILE (something-something-v2-labels.json) is needed to read " + str(src))
            labels_file = lists.find_list(d.LABELS_FILE)
            class_names = lists.ssv2_class_names(labels_file)
            rel, labels, missing = lists.read_ssv2_json(src, labels_file, root or ".")
            if missing:
                logger.warning("%s: %d videos are missing under %s (skipped)", src, len(missing), root)
        else:
            rel, labels = lists.read_path_label_list(src)
            default = {"kinetics": "kinetics400_classes.txt", "ssv2": "ssv2_classes.txt"}.get(kind)
            class_names = _class_names(cfg, default, beside=src)
    if not rel:
        raise lists.ListError(f"{src}: no videos for split {split!r}")
    n_cls = int(cfg.MODEL.NUM_CLASSES)
    bad = [(p, y) for p, y in zip(rel, labels) if not 0 <= y < n_cls]
    if bad:
        raise lists.ListError(f"{src}: {len(bad)} labels outside 0..{n_cls - 1} (MODEL.NUM_CLASSES={n_cls}), "
                          f"e.g. {bad[0][0]} -> {bad[0][1]}")
    paths = [lists.resolve_under(root, p, d.ALLOW_OUTSIDE_ROOT) for p in rel]
    return VideoDataset(paths, labels, cfg, train=(split == "train"), class_names=class_names, num_classes=n_cls)
