"""PNG figures (matplotlib, Agg backend: works headless)."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    tmp = path + ".part.png"
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    os.replace(tmp, path)


def plot_confusion(cm: np.ndarray, path: str, class_names: Optional[Sequence[str]] = None) -> str:
    """Row-normalised confusion matrix; labels shown only when few classes."""
    plt = _plt()
    n = cm.shape[0]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.35 * n, 20)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (row-normalised)")
    if n <= 40:
        names = [class_names[i] if class_names is not None and i < len(class_names) else str(i) for i in range(n)]
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels(names, rotation=90, fontsize=7)
        ax.set_yticklabels(names, fontsize=7)
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if norm[i, j] > 0.5 else "black")
    _save(fig, path)
    plt.close(fig)
    return path


def plot_training_curves(history: List[Dict], path: str) -> Optional[str]:
    """Loss and top-1 (train / val) against epoch, from the epoch summaries."""
    train = [h for h in history if h.get("type") == "train_epoch"]
    val = [h for h in history if h.get("type") == "val"]
    if not train:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot([h["epoch"] for h in train], [h["loss"] for h in train], "o-", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot([h["epoch"] for h in train], [h["top1"] for h in train], "o-", label="train top-1 (clips)")
    if val:
        ax2.plot([h["epoch"] for h in val], [h["top1"] for h in val], "s-", label="val top-1 (videos)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("top-1 %")
    ax2.set_ylim(0, 100)
    ax2.legend()
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path
