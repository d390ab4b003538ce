"""Video-level metrics from per-video scores; re-scoring of saved results.

Everything here is plain NumPy on (N, C) score arrays, so results saved as
``scores.npz`` can be re-scored without running a model.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.text import plural


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the k highest scores (ties broken by index)."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """cm[true, pred] counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per class; NaN for classes with no videos."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def mean_class_accuracy(cm: np.ndarray) -> float:
    """Mean of per-class recall over classes present in the labels (MMAction2 convention)."""
    acc = per_class_accuracy(cm)
    return float(np.nanmean(acc)) if np.any(~np.isnan(acc)) else float("nan")


def dedup_by_index(indices: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each video index, sorted by index.

    Distributed evaluation pads the dataset with repeats; gathering then yields
    duplicates that would bias metrics.
    """
    _, first = np.unique(indices, return_index=True)
    return first


def compute_metrics(scores: np.ndarray, labels: np.ndarray, num_classes: Optional[int] = None,
                    clip_correct: Optional[np.ndarray] = None, clip_count: Optional[np.ndarray] = None,
                    num_failed: int = 0, num_partial: int = 0) -> Dict:
    """Video top-1/top-5, mean class accuracy, clip accuracy and counts (percentages); ``num_partial``:
    scored videos whose stream breaks (scored on the frames before the break)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = num_classes or scores.shape[1]
    pred = scores.argmax(axis=1) if len(labels) else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(pred, labels, num_classes)
    out = {
        "top1": 100.0 * topk_accuracy(scores, labels, 1),
        "top5": 100.0 * topk_accuracy(scores, labels, 5),
        "mean_class_acc": 100.0 * mean_class_accuracy(cm),
        "num_videos": int(len(labels)),
        "num_failed": int(num_failed),
        "num_total": int(len(labels) + num_failed),
        "num_partial": int(num_partial),
    }
    if clip_correct is not None and clip_count is not None and np.sum(clip_count) > 0:
        out["clip_top1"] = 100.0 * float(np.sum(clip_correct) / np.sum(clip_count))
        out["num_clips"] = int(np.sum(clip_count))
    return out


def per_class_rows(cm: np.ndarray, class_names: Optional[Sequence[str]] = None) -> List[Dict]:
    acc = per_class_accuracy(cm)
    rows = []
    for c in range(cm.shape[0]):
        rows.append({
            "class_id": c,
            "class_name": class_names[c] if class_names is not None and c < len(class_names) else str(c),
            "videos": int(cm[c].sum()),
            "correct": int(cm[c, c]),
            "accuracy": "" if np.isnan(acc[c]) else round(100.0 * float(acc[c]), 2),
        })
    return rows


def save_scores_npz(path: str, video_ids, paths, labels, scores, num_views, clip_correct,
                    class_names=None, failed=()) -> None:
    """Per-video results, enough to re-score without the model (see :func:`rescore_npz`)."""
    np.savez_compressed(
        path,
        video_ids=np.asarray(video_ids, dtype=np.int64),
        paths=np.asarray(list(paths), dtype=str),
        labels=np.asarray(labels, dtype=np.int64),
        scores=np.asarray(scores, dtype=np.float32),
        num_views=np.asarray(num_views, dtype=np.int64),
        clip_correct=np.asarray(clip_correct, dtype=np.int64),
        class_names=np.asarray(list(class_names) if class_names is not None else [], dtype=str),
        failed_ids=np.asarray([f[0] for f in failed], dtype=np.int64),
        failed_paths=np.asarray([str(f[1]) for f in failed], dtype=str),
        failed_reasons=np.asarray([str(f[2]) for f in failed], dtype=str),
    )


def rescore_npz(path: str) -> Dict:
    """Recompute all metrics from a saved ``scores.npz``."""
    with np.load(path, allow_pickle=False) as z:
        scores = z["scores"]
        num_classes = scores.shape[1] if scores.ndim == 2 else (len(z["class_names"]) or 1)
        return compute_metrics(scores, z["labels"], num_classes=num_classes,
                               clip_correct=z["clip_correct"], clip_count=z["num_views"],
                               num_failed=len(z["failed_ids"]))


def format_metrics(m: Dict) -> str:
    s = (f"evaluated {m['num_videos']} of {plural(m['num_total'], 'video')}"
         f" ({m['num_failed']} failed" + (f", {m['num_partial']} partial" if m.get("num_partial") else "")
         + f") | top-1 {m['top1']:.2f}% | top-5 {m['top5']:.2f}%"
         f" | mean class acc {m['mean_class_acc']:.2f}%")
    if "clip_top1" in m:
        s += f" | clip top-1 {m['clip_top1']:.2f}% ({plural(m['num_clips'], 'clip')})"
    return s
