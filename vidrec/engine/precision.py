"""Mixed precision: bf16 autocast needs no scaler; fp16 needs a GradScaler (GPU)."""
from __future__ import annotations

import contextlib

import torch

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(mode: str) -> str:
    mode = (mode or "fp32").lower()
    if mode not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"TRAIN.MIXED_PRECISION must be fp32, bf16 or fp16, got {mode!r}")
    return mode


def autocast(mode: str, device: torch.device):
    mode = check_precision(mode)
    if mode == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[mode])


def make_scaler(mode: str, device: torch.device):
    """A GradScaler for fp16, else None."""
    if check_precision(mode) != "fp16":
        return None
    return torch.amp.GradScaler(device.type)
