"""Mixed precision, clipping and accumulation paths run (on CPU) and produce finite weights."""
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
