"""A NaN/Inf loss or gradient stops training with a message naming the iteration."""
import pytest
import torch

from vidrec.engine import distributed as du
from vidrec.engine.trainer import NonFiniteError, Trainer

from .conftest import tiny_cfg


def _trainer(root, out):
    cfg = tiny_cfg(root, out, TRAIN__EVAL_PERIOD=0, TEST__ENABLE=False, SOLVER__MAX_EPOCH=1)
    return Trainer(cfg, du.init_distributed(cfg))


def test_nan_loss_stops_with_iteration(synthetic_root, tmp_path):
    t = _trainer(synthetic_root, str(tmp_path))
    net, calls = t.net, {"n": 0}
    forward = net.forward

    def poisoned(x):
        calls["n"] += 1
        out = forward(x)
        return out * float("nan") if calls["n"] == 3 else out

    net.forward = poisoned
    with pytest.raises(NonFiniteError, match=r"non-finite loss.* at epoch 1, iteration 3/4 \(global step 3\)"):
        t.fit()
    assert t.global_step == 2  # the bad update was never applied


def test_inf_gradient_with_finite_loss_is_caught(synthetic_root, tmp_path):
    t = _trainer(synthetic_root, str(tmp_path))
    p = next(t.net.parameters())
    before = {}

    def hook(grad):
        if t.global_step == 1:
            before["w"] = p.detach().clone()
            return grad * float("inf")
        return grad

    p.register_hook(hook)
    with pytest.raises(NonFiniteError, match=r"non-finite gradient at epoch 1, iteration 2/4"):
        t.fit()
    assert torch.equal(p.detach(), before["w"])  # weights untouched by the bad step
