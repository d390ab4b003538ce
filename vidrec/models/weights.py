"""Reading weight files safely: safetensors or ``torch.load(weights_only=True)``.

A file that can only be read by unpickling arbitrary objects is refused, never
loaded with a silent fallback: a pickle can run code on load.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Dict, Mapping

import torch

WRAPPER_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "module")


class UnsafeCheckpointError(RuntimeError):
    """The file needs full unpickling, which could execute code."""


def read_state_dict(path: str | Path) -> Dict[str, torch.Tensor]:
    """Tensors of a weight or checkpoint file, unwrapped and without DDP prefixes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    else:
        state = safe_torch_load(path)
    return normalize_state_dict(state, source=str(path))


def safe_torch_load(path: str | Path, map_location="cpu"):
    """``torch.load`` restricted to tensors and plain containers."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "GLOBAL" not in text and "global" not in text:  # junk bytes, not a forbidden object
            raise ValueError(f"{path}: not a readable PyTorch checkpoint "
                             f"(neither a torch.save archive nor a tensor pickle)") from None
        forbidden = next((ln for ln in text.splitlines() if "GLOBAL" in ln), text.splitlines()[0])
        raise UnsafeCheckpointError(
            f"{path}: refusing to load: the file contains pickled Python objects that "
            f"torch.load(weights_only=True) does not allow, and unpickling them could run "
            f"arbitrary code. If you trust the file, re-save only its tensors "
            f"(e.g. torch.save(obj['state_dict'], 'clean.pt')) or convert it to safetensors. "
            f"Detail: {forbidden.strip()}"
        ) from None
    except Exception as e:  # torch raises KeyError, RuntimeError, EOFError... on junk
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({e})") from None


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
        raise ValueError(f"{source}: no state dict found (expected a mapping of tensors)")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in ("module.", "_orig_mod."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        state[key] = value
    if not state:
        raise ValueError(f"{source}: the mapping holds no tensors")
    return state


def load_weights(model: torch.nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load a weight file into ``model``; mismatches are reported by key name."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = []
    if missing and strict:
        problems.append(f"missing keys ({len(missing)}): {_short(missing)}")
    if unexpected and strict:
        problems.append(f"unexpected keys ({len(unexpected)}): {_short(unexpected)}")
    if shapes:
        problems.append("shape mismatches: " + _short(
            [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in shapes]))
    if problems:
        raise ValueError(f"{path} does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state, strict=strict)


def _short(items, n: int = 8) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f", ... (+{len(items) - n} more)" if len(items) > n else "")
