"""Checkpoints: atomic writes, last-K + best retention, safe loading, safetensors export.

Files live in OUTPUT_DIR/checkpoints/ as ``ckpt_e{EPOCH}_i{ITER}.pt`` where
(EPOCH, ITER) is the position training resumes from. A checkpoint is written
to a hidden temp file, fsynced and renamed, so a crash leaves either the old
set or the complete new file. Everything is loaded with
``torch.load(weights_only=True)`` (or safetensors): a file that needs
arbitrary unpickling is refused, because unpickling can run code.
"""
from __future__ import annotations

import io
import logging
import os
import re
from typing import Dict, List, Optional

import torch

from ..models.weights import (  # noqa: F401  (re-exported: the engine's loading API)
    CheckpointError, UnsafeCheckpointError, load_weights, read_state_dict, safe_load)
from ..utils.io import atomic_write_bytes
from . import faults

logger = logging.getLogger(__name__)

CKPT_RE = re.compile(r"^ckpt_e(\d{4,})_i(\d{6,})\.pt$")
BEST_NAME = "best.pt"
FORMAT_VERSION = 1


def checkpoint_name(epoch: int, it: int) -> str:
    return f"ckpt_e{epoch:04d}_i{it:06d}.pt"


def list_checkpoints(folder: str) -> List[str]:
    """Complete checkpoints, oldest first (temp files never match the pattern)."""
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        m = CKPT_RE.match(name)
        if m:
            found.append(((int(m.group(1)), int(m.group(2))), os.path.join(folder, name)))
    return [p for _, p in sorted(found)]


def remove_stale_temp_files(folder: str) -> None:
    """Temp files left by a crash mid-write are garbage: delete them."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name.startswith(".") and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def save_checkpoint(state: Dict, path: str) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue(), mid_write_hook=faults.checkpoint_write_hook())


def prune(folder: str, keep_last: int) -> None:
    """Keep the newest ``keep_last`` step checkpoints (best.pt is separate and kept)."""
    if keep_last <= 0:
        return
    for path in list_checkpoints(folder)[:-keep_last]:
        try:
            os.unlink(path)
        except OSError as e:
            logger.warning("could not remove old checkpoint %s: %s", path, e)


def export_safetensors(src: "str | torch.nn.Module", dst: str) -> str:
    """Write plain model weights (no optimizer, no pickle) as safetensors."""
    from safetensors.torch import save as st_save

    if isinstance(src, torch.nn.Module):
        sd = src.state_dict()
    else:
        sd = read_state_dict(src)
    sd = {k[7:] if k.startswith("module.") else k: v.detach().cpu().contiguous() for k, v in sd.items()}
    atomic_write_bytes(dst, st_save(sd))
    return dst


def latest_loadable(folder: str) -> Optional[tuple]:
    """(path, state) of the newest checkpoint that loads; unreadable ones are skipped with a warning."""
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, safe_load(path)
        except UnsafeCheckpointError:
            raise
        except CheckpointError as e:
            logger.warning("skipping unreadable checkpoint: %s", e)
    return None
