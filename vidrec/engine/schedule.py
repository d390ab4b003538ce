"""Learning-rate schedule, a pure function of fractional epoch (resume needs no state).

Paper protocol: base LR 0.1 for a global batch of 64, x0.1 at epochs 30/60/80
of 90; the base LR scales linearly with the effective global batch
(TRAIN.BATCH_SIZE * TRAIN.ACCUM_STEPS); optional linear warm-up.
"""
from __future__ import annotations

import math


def scaled_base_lr(cfg) -> float:
    effective = cfg.TRAIN.BATCH_SIZE * cfg.TRAIN.ACCUM_STEPS
    return cfg.SOLVER.BASE_LR * effective / cfg.SOLVER.BASE_BATCH_SIZE


def _policy_lr(cfg, epoch: float, base: float) -> float:
    policy = cfg.SOLVER.LR_POLICY
    if policy == "steps":
        n = sum(1 for s in cfg.SOLVER.STEPS if epoch >= s)
        return base * cfg.SOLVER.GAMMA ** n
    if policy == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * min(epoch, cfg.SOLVER.MAX_EPOCH) / cfg.SOLVER.MAX_EPOCH))
    if policy == "constant":
        return base
    raise ValueError(f"SOLVER.LR_POLICY must be steps, cosine or constant, got {policy!r}")


def lr_at(cfg, epoch: float) -> float:
    """LR at fractional epoch ``epoch + iter / iters_per_epoch``."""
    base = scaled_base_lr(cfg)
    lr = _policy_lr(cfg, epoch, base)
    warm = cfg.SOLVER.WARMUP_EPOCHS
    if warm > 0 and epoch < warm:
        start = cfg.SOLVER.WARMUP_START_FACTOR
        lr *= start + (1.0 - start) * epoch / warm
    return lr


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
