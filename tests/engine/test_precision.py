"""Compute paths (mixed precision, clipping, accumulation, memory layout, device resize) run on CPU."""
import json
import math

import pytest
import torch

from vidrec.engine import train

from .conftest import tiny_cfg


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_with_clipping_and_accumulation(synthetic_root, tmp_path, precision):
    cfg = tiny_cfg(synthetic_root, str(tmp_path), TRAIN__MIXED_PRECISION=precision, TRAIN__CLIP_GRAD_NORM=1.0,
                   TRAIN__ACCUM_STEPS=2, TRAIN__BATCH_SIZE=4, SOLVER__MAX_EPOCH=1, TRAIN__EVAL_PERIOD=0,
                   TEST__ENABLE=False)
    res = train(cfg)
    epoch = [h for h in res["history"] if h["type"] == "train_epoch"]
    assert len(epoch) == 1 and math.isfinite(epoch[0]["loss"])
    from vidrec.engine.checkpoint import safe_load

    state = safe_load(str(tmp_path / "checkpoints" / "ckpt_e0001_i000000.pt"))
    assert state["global_step"] == 4  # 32 videos / (4 x 2)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    if precision == "fp16":
        assert state["scaler"]["scale"] > 0  # GradScaler state is checkpointed for resume


def test_memory_format_and_device_resize_train_alike(synthetic_root, tmp_path):
    """channels_last_3d (the CPU default) vs contiguous, loader resize vs DATA.RESIZE_ON_DEVICE:
    the same training up to float rounding (and the loader's uint8 rounding)."""
    first, epoch = {}, {}
    variants = {"default": {}, "contiguous": {"MEMORY_FORMAT": "contiguous"},
                "device_resize": {"DATA__RESIZE_ON_DEVICE": True}}
    for name, extra in variants.items():
        cfg = tiny_cfg(synthetic_root, str(tmp_path / name), SOLVER__MAX_EPOCH=1, TRAIN__EVAL_PERIOD=0,
                       TEST__ENABLE=False, LOG_PERIOD=1, **extra)
        res = train(cfg)
        epoch[name] = [h["loss"] for h in res["history"] if h["type"] == "train_epoch"][0]
        records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        first[name] = next(r["loss"] for r in records if r["type"] == "train_iter" and r["step"] == 1)
    assert math.isfinite(epoch["default"])
    assert epoch["contiguous"] == pytest.approx(epoch["default"], rel=1e-3)
    # Same weights, same crops: the first step's loss differs only by the inputs' uint8 rounding.
    assert first["device_resize"] == pytest.approx(first["default"], rel=1e-2)
    assert first["device_resize"] != first["default"]  # the device path really ran
