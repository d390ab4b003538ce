"""The gradient logic of one optimizer step, in the order ``Trainer.step`` calls it:

  1. ``backward`` for each of ACCUM_STEPS micro-batches: the micro-batch's mean loss
     divided by ACCUM_STEPS (and scaled by the fp16 GradScaler), so that the summed
     gradients are those of the mean loss over the whole step's batch;
  2. ``unscale_and_clip``: fp16 gradients unscaled first, then the global norm of
     the accumulated gradients clipped to TRAIN.CLIP_GRAD_NORM (0: off); returns
     the norm before clipping;
  3. ``grad_is_nonfinite``: the verdict the trainer agrees on across ranks;
  4. ``apply_update``: the optimizer step (through the GradScaler for fp16).
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import torch


def backward(loss: torch.Tensor, accum_steps: int, scaler: Optional[torch.amp.GradScaler] = None) -> None:
    """Accumulate the gradients of ``loss / accum_steps`` (scaled by ``scaler`` when there is one)."""
    scaled = loss / accum_steps
    (scaler.scale(scaled) if scaler is not None else scaled).backward()


def grad_norm(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """The global L2 norm of the parameters' gradients (float32, on CPU); 0 when there are none."""
    norms = [torch.linalg.vector_norm(p.grad.detach(), 2.0) for p in params if p.grad is not None]
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([n.float().cpu() for n in norms]), 2.0)


def unscale_and_clip(optimizer: torch.optim.Optimizer, params: list, max_norm: float,
                     scaler: Optional[torch.amp.GradScaler] = None) -> torch.Tensor:
    """Unscale (fp16), then clip the global gradient norm to ``max_norm`` (<= 0: no clipping).

    Returns the norm before clipping; after it, the norm is min(norm, max_norm).
    """
    if scaler is not None:
        scaler.unscale_(optimizer)
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    return grad_norm(params)


def grad_is_nonfinite(gnorm: torch.Tensor, scaler: Optional[torch.amp.GradScaler] = None) -> bool:
    """A NaN/Inf gradient norm stops training; with fp16 it is the GradScaler's business
    (it skips the step and lowers the scale)."""
    return scaler is None and not math.isfinite(float(gnorm))


def apply_update(optimizer: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler] = None) -> None:
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
