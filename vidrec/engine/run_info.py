"""Files every run writes at start, so a result can always be traced to its setup:
config.yaml (resolved), env.json (versions, GPUs, cuDNN), model_complexity.json."""
from __future__ import annotations

import copy
import json
import logging
import os

import torch

from ..utils.env import collect_env
from ..utils.io import atomic_write_text

logger = logging.getLogger("vidrec")


def input_shape(cfg, train: bool = True):
    size = cfg.DATA.TRAIN_CROP_SIZE if train else cfg.DATA.TEST_CROP_SIZE
    return (1, 3, cfg.DATA.NUM_FRAMES, size, size)


def write_run_info(cfg, model: torch.nn.Module, output_dir: str, world_size: int = 1, tag: str = "") -> dict:
    os.makedirs(output_dir, exist_ok=True)
    atomic_write_text(os.path.join(output_dir, f"config{tag}.yaml"), cfg.dump())
    env = collect_env()
    env["world_size"] = world_size
    atomic_write_text(os.path.join(output_dir, f"env{tag}.json"), json.dumps(env, indent=2))
    info = {"arch": cfg.MODEL.ARCH, "input_shape": list(input_shape(cfg))}
    try:
        from ..models.complexity import model_complexity

        # On a copy, so tracing never touches the training model's buffers.
        m = copy.deepcopy(model).cpu().eval()
        info.update(model_complexity(m, input_shape=input_shape(cfg)))
        del m
    except Exception as e:  # noqa: BLE001 - complexity is informative, never fatal
        info["params"] = sum(p.numel() for p in model.parameters())
        info["error"] = f"{type(e).__name__}: {e}"
    atomic_write_text(os.path.join(output_dir, "model_complexity.json"), json.dumps(info, indent=2))
    gfl = info.get("fvcore_gflops")
    logger.info("model %s: %.2fM params%s (input %s)", cfg.MODEL.ARCH, info["params"] / 1e6,
                f", {gfl:.3f} GFLOPs (fvcore)" if isinstance(gfl, float) else "", info["input_shape"])
    return info
