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
    return prepare_run_info(cfg, model, world_size, tag).write(output_dir)


class RunInfo:
    """The run-info files, computed but not yet written: training writes them only once its checks
    of OUTPUT_DIR (lock, resume, config changes) have passed, so a refused start never overwrites them."""

    def __init__(self, files: dict, info: dict, log_args: tuple):
        self.files, self.info, self.log_args = files, info, log_args

    def write(self, output_dir: str) -> dict:
        os.makedirs(output_dir, exist_ok=True)
        for name, text in self.files.items():
            atomic_write_text(os.path.join(output_dir, name), text)
        logger.info(*self.log_args)
        return self.info


def prepare_run_info(cfg, model: torch.nn.Module, world_size: int = 1, tag: str = "") -> RunInfo:
    env = collect_env()
    env["world_size"] = world_size
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
    files = {f"config{tag}.yaml": cfg.dump(), f"env{tag}.json": json.dumps(env, indent=2),
             "model_complexity.json": json.dumps(info, indent=2)}
    gfl = info.get("fvcore_gflops")
    log_args = ("model %s: %.2fM params%s (input %s)", cfg.MODEL.ARCH, info["params"] / 1e6,
                f", {gfl:.3f} GFLOPs (fvcore)" if isinstance(gfl, float) else "", info["input_shape"])
    return RunInfo(files, info, log_args)
