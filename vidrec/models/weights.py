"""Reading weight files safely: safetensors or ``torch.load(weights_only=True)``.

A file that can only be read by unpickling arbitrary objects is refused, never
loaded with a silent fallback: a pickle can run code on load.
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Dict, List, Mapping

import torch

logger = logging.getLogger(__name__)
WRAPPER_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "module")


class CheckpointError(ValueError):
    """A weight or checkpoint file that cannot be used: missing, corrupt or not fitting the model."""


class UnsafeCheckpointError(CheckpointError):
    """The file needs full unpickling, which could execute code; never loaded."""


def safe_load(path: str | Path, map_location="cpu"):
    """The contents of a ``.safetensors`` file, or ``torch.load`` limited to tensors and plain containers."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device=str(map_location))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "GLOBAL" not in text and "global" not in text:  # junk bytes, not a forbidden object
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint "
                                  f"(neither a torch.save archive nor a tensor pickle)") from None
        forbidden = next((ln for ln in text.splitlines() if "GLOBAL" in ln), text.splitlines()[0])
        raise UnsafeCheckpointError(
            f"Refusing to load {path}: the file contains pickled Python objects that "
            f"torch.load(weights_only=True) does not allow, and unpickling them could run "
            f"arbitrary code. If you trust the file, re-save only its tensors in a separate "
            f"session (e.g. torch.save(obj['state_dict'], 'clean.pt')) or convert it to "
            f"safetensors. Detail: {forbidden.strip()}"
        ) from None
    except Exception as e:  # torch raises KeyError, RuntimeError, EOFError... on junk
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupt ({e})") from None


def read_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """Tensors of a weight or checkpoint file, unwrapped and without DDP prefixes."""
    return normalize_state_dict(safe_load(path), source=str(path))


def normalize_state_dict(obj, source: str = "checkpoint") -> Dict[str, torch.Tensor]:
    """Unwrap ``{'state_dict': ...}``-style containers and strip ``module.`` prefixes."""
    for _ in range(3):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None and not any(isinstance(v, torch.Tensor) for v in obj.values()):
                obj = inner
                continue
        break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: no state dict found (expected a mapping of tensors)")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in ("module.", "_orig_mod."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        state[key] = value
    if not state:
        raise CheckpointError(f"{source}: the mapping holds no tensors")
    return state


def load_weights(model: torch.nn.Module, path: str | Path, strict: bool = True) -> Dict[str, List[str]]:
    """Load a weight file into ``model``; mismatches are reported by key name.

    ``strict``: any missing, unexpected or shape-mismatched key is an error.
    Otherwise the tensors that fit are loaded (e.g. a backbone under a new
    classifier) and the rest is logged and returned.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    report = {
        "missing": sorted(set(own) - set(state)),
        "unexpected": sorted(set(state) - set(own)),
        "mismatched": sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape),
    }
    problems = []
    if report["missing"]:
        problems.append(f"missing keys ({len(report['missing'])}): {_short(report['missing'])}")
    if report["unexpected"]:
        problems.append(f"unexpected keys ({len(report['unexpected'])}): {_short(report['unexpected'])}")
    if report["mismatched"]:
        problems.append("shape mismatches: " + _short(
            [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in report["mismatched"]]))
    if problems and strict:
        raise CheckpointError(f"{path} does not fit {type(model).__name__}: " + "; ".join(problems))
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    if problems:
        logger.warning("loaded %d tensors from %s; %s", len(usable), path, "; ".join(problems))
    return report


def _short(items, n: int = 8) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f", ... (+{len(items) - n} more)" if len(items) > n else "")
