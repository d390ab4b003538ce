import pytest

from vidrec.config import get_cfg
from vidrec.engine.schedule import lr_at, scaled_base_lr


def test_paper_schedule_steps_and_linear_scaling():
    cfg = get_cfg()  # base LR 0.1 @ 64, steps 30/60/80 of 90
    assert scaled_base_lr(cfg) == pytest.approx(0.1)
    assert lr_at(cfg, 0.0) == pytest.approx(0.1)
    assert lr_at(cfg, 29.999) == pytest.approx(0.1)
    assert lr_at(cfg, 30.0) == pytest.approx(0.01)
    assert lr_at(cfg, 59.5) == pytest.approx(0.01)
    assert lr_at(cfg, 60.0) == pytest.approx(0.001)
    assert lr_at(cfg, 80.0) == pytest.approx(0.0001)
    assert lr_at(cfg, 89.99) == pytest.approx(0.0001)
    cfg.TRAIN.BATCH_SIZE = 16
    cfg.TRAIN.ACCUM_STEPS = 2  # effective batch 32 -> half the LR
    assert lr_at(cfg, 0.0) == pytest.approx(0.05)
    assert lr_at(cfg, 45.0) == pytest.approx(0.005)


def test_linear_warmup_per_iteration():
    cfg = get_cfg()
    cfg.SOLVER.WARMUP_EPOCHS = 2.0
    cfg.SOLVER.WARMUP_START_FACTOR = 0.1
    assert lr_at(cfg, 0.0) == pytest.approx(0.01)
    assert lr_at(cfg, 1.0) == pytest.approx(0.055)
    assert lr_at(cfg, 0.5) == pytest.approx(0.1 * (0.1 + 0.9 * 0.25))  # fractional epoch = iter / iters
    assert lr_at(cfg, 2.0) == pytest.approx(0.1)


def test_unknown_policy_is_an_error():
    cfg = get_cfg()
    cfg.SOLVER.LR_POLICY = "bogus"
    with pytest.raises(ValueError, match="LR_POLICY"):
        lr_at(cfg, 0.0)
