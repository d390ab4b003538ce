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

from ..utils.io import atomic_write_bytes
from . import faults

logger = logging.getLogger(__name__)

CKPT_RE = re.compile(r"^ckpt_e(\d{4,})_i(\d{6,})\.pt$")
BEST_NAME = "best.pt"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (corrupt, truncated, incompatible)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that would need unsafe unpickling; never loaded."""


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


def safe_load(path: str, map_location="cpu") -> Dict:
    """Load a checkpoint without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``. Raises UnsafeCheckpointError for files
    that need arbitrary unpickling and CheckpointError for unreadable ones.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path, device=str(map_location))
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"cannot read safetensors file {path}: {e}") from e
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001
        msg = str(e)
        if "Weights only load failed" in msg or "Unsupported global" in msg or "UnpicklingError" in type(e).__name__:
            raise UnsafeCheckpointError(
                f"Refusing to load {path}: it contains pickled Python objects beyond tensors and plain "
                "types, and unpickling those can execute arbitrary code. vidrec only loads checkpoints with "
                "torch.load(weights_only=True) or safetensors. If you trust the file, convert it once in a "
                "separate Python session (torch.load(path, weights_only=False), then save only the "
                "state_dict or export it with safetensors). Details: " + msg.splitlines()[0]
            ) from e
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or corrupt?): {msg.splitlines()[0] if msg else e!r}") from e


def extract_state_dict(obj: Dict) -> Dict[str, torch.Tensor]:
    """Model weights from our checkpoints, plain state_dicts or common wrappers."""
    if isinstance(obj, dict):
        for key in ("model", "model_state", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("the file holds no model state_dict (tensor mapping)")
    return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}


def load_weights(model: torch.nn.Module, path: str, strict: bool = False) -> Dict[str, List[str]]:
    """Load model weights from ``path``; shape-mismatched keys (e.g. a new classifier) are skipped and reported."""
    sd = extract_state_dict(safe_load(path))
    own = model.state_dict()
    usable = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    mismatched = [k for k, v in sd.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in usable]
    unexpected = [k for k in sd if k not in own]
    if strict and (missing or unexpected or mismatched):
        raise CheckpointError(
            f"{path} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatch {mismatched[:5]}")
    model.load_state_dict(usable, strict=False)
    if missing or unexpected or mismatched:
        logger.warning("loaded %s: %d tensors; missing %d, unexpected %d, shape-mismatched %d (%s)",
                       path, len(usable), len(missing), len(unexpected), len(mismatched), mismatched[:3])
    return {"missing": missing, "unexpected": unexpected, "mismatched": mismatched}


def export_safetensors(src: "str | torch.nn.Module", dst: str) -> str:
    """Write plain model weights (no optimizer, no pickle) as safetensors."""
    from safetensors.torch import save as st_save

    if isinstance(src, torch.nn.Module):
        sd = src.state_dict()
    else:
        sd = extract_state_dict(safe_load(src))
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
