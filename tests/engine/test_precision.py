"""Compute paths (mixed precision, clipping, accumulation, memory layout, device resize) run on CPU.

What each of vidrec's own step mechanisms does is asserted on the first optimizer
step (the gradients the optimizer is handed): autocast (the dtype a conv computes
in), clipping (against a manual computation on an unclipped twin run), gradient
accumulation (against one batch of the same size), and the CPU bf16 workaround
(oneDNN off in forward and backward, so no test depends on torch 2.13's oneDNN bf16
Conv3d weight gradient, which is intermittently NaN on CPUs with AVX512_BF16)."""
import json
import math

import pytest
import torch

from vidrec.engine import distributed as du
from vidrec.engine import train
from vidrec.engine.precision import cpu_bf16_workaround, mkldnn_disabled, training_kernels
from vidrec.engine.step import unscale_and_clip
from vidrec.engine.trainer import Trainer

from .conftest import tiny_cfg

_DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_NOTE = "CPU bf16 training: oneDNN off"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_with_clipping_and_accumulation(synthetic_root, tmp_path, precision):
    """A whole epoch runs; the CPU bf16 workaround is announced in one log line (only for bf16)."""
    cfg = tiny_cfg(synthetic_root, str(tmp_path), TRAIN__MIXED_PRECISION=precision, TRAIN__CLIP_GRAD_NORM=1.0,
                   TRAIN__ACCUM_STEPS=2, TRAIN__BATCH_SIZE=4, SOLVER__MAX_EPOCH=1, TRAIN__EVAL_PERIOD=0,
                   TEST__ENABLE=False)
    mkldnn_before = torch.backends.mkldnn.enabled
    res = train(cfg)
    assert torch.backends.mkldnn.enabled == mkldnn_before  # restored after every step
    epoch = [h for h in res["history"] if h["type"] == "train_epoch"]
    assert len(epoch) == 1 and math.isfinite(epoch[0]["loss"])
    from vidrec.engine.checkpoint import safe_load

    state = safe_load(str(tmp_path / "checkpoints" / "ckpt_e0001_i000000.pt"))
    assert state["global_step"] == 4  # 32 videos / (4 x 2)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    if precision == "fp16":
        assert state["scaler"]["scale"] > 0  # GradScaler state is checkpointed for resume
    notes = [line for line in (tmp_path / "log.txt").read_text().splitlines() if _NOTE in line]
    assert len(notes) == (1 if precision == "bf16" else 0)


# ---------------------------------------------------------------- first-step probes


class _Stop(Exception):
    pass


def _trainer(root, out, **overrides):
    cfg = tiny_cfg(root, out, TRAIN__EVAL_PERIOD=0, TEST__ENABLE=False, SOLVER__MAX_EPOCH=1, **overrides)
    return Trainer(cfg, du.init_distributed(cfg))


def _first_step_grads(t):
    """The gradients the optimizer gets at the first step (after accumulation and clipping), float64."""
    seen = {}

    def capture(*args, **kwargs):
        seen.update({n: p.grad.detach().double().clone() for n, p in t.net.named_parameters() if p.grad is not None})
        raise _Stop

    t.optimizer.step = capture
    with pytest.raises(_Stop):
        t.train_epoch()
    assert seen, "the optimizer was never stepped (fp16: the GradScaler skipped the step)"
    return seen


def _norm(grads):
    return math.sqrt(sum(float(g.square().sum()) for g in grads.values()))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_autocast_dtype_and_cpu_bf16_kernels(synthetic_root, tmp_path, precision):
    """Convs compute in the configured dtype inside the step; CPU bf16 runs its forward and
    backward with oneDNN off (the workaround), every other mode with oneDNN as it was."""
    t = _trainer(synthetic_root, str(tmp_path), TRAIN__MIXED_PRECISION=precision, TRAIN__ACCUM_STEPS=2,
                 TRAIN__BATCH_SIZE=4)
    convs = [m for m in t.net.modules() if isinstance(m, torch.nn.Conv3d)]
    fwd, bwd = [], []
    for m in convs:
        m.register_forward_hook(lambda m, i, o: fwd.append((o.dtype, torch.backends.mkldnn.enabled)))
    convs[0].weight.register_hook(lambda g: bwd.append(torch.backends.mkldnn.enabled))
    before = torch.backends.mkldnn.enabled
    assert before  # oneDNN is on by default: a workaround that forgot to turn it off would show below
    _first_step_grads(t)
    # Two micro-batches per step (fp16: the GradScaler may skip the first steps' overflowing updates).
    assert len(bwd) >= 2 and len(bwd) % 2 == 0 and len(fwd) == len(bwd) * len(convs)
    assert {dtype for dtype, _ in fwd} == {_DTYPE[precision]}
    expect = not cpu_bf16_workaround(precision, torch.device("cpu"))
    assert expect == (precision != "bf16")
    assert {on for _, on in fwd} == {expect} and set(bwd) == {expect}
    assert torch.backends.mkldnn.enabled == before


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_clipping_bounds_the_accumulated_gradient_norm(synthetic_root, tmp_path, precision):
    """With TRAIN.CLIP_GRAD_NORM c the optimizer gets g * min(1, c / |g|), g the accumulated
    (and, for fp16, unscaled) gradients of the unclipped twin run: its norm is min(|g|, c)."""
    common = dict(TRAIN__MIXED_PRECISION=precision, TRAIN__ACCUM_STEPS=2, TRAIN__BATCH_SIZE=4)
    ref = _first_step_grads(_trainer(synthetic_root, str(tmp_path / "ref"), **common))
    norm = _norm(ref)
    assert norm > 0 and math.isfinite(norm)
    for i, max_norm in enumerate((norm / 4, norm * 4)):
        got = _first_step_grads(_trainer(synthetic_root, str(tmp_path / str(i)), TRAIN__CLIP_GRAD_NORM=max_norm,
                                         **common))
        assert got.keys() == ref.keys()
        assert _norm(got) == pytest.approx(min(norm, max_norm), rel=1e-4)
        factor = min(1.0, max_norm / norm)
        for k, g in ref.items():
            torch.testing.assert_close(got[k], g * factor, rtol=1e-4, atol=1e-7 * norm)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_accumulated_gradients_equal_one_large_batch(synthetic_root, tmp_path, precision):
    """2 micro-batches of 4 (each loss / ACCUM_STEPS) give the gradients of one batch of 8
    (frozen BN: batch statistics do not depend on the split; no dropout in the tiny config)."""
    common = dict(TRAIN__MIXED_PRECISION=precision, TRAIN__FREEZE_BN=True)
    one = _first_step_grads(_trainer(synthetic_root, str(tmp_path / "one"), TRAIN__BATCH_SIZE=8, **common))
    acc = _first_step_grads(_trainer(synthetic_root, str(tmp_path / "acc"), TRAIN__BATCH_SIZE=4,
                                     TRAIN__ACCUM_STEPS=2, **common))
    assert acc.keys() == one.keys()
    diff = math.sqrt(sum(float((acc[k] - one[k]).square().sum()) for k in one))
    # fp32: float rounding; bf16: per-micro-batch bf16 weight gradients (about 2^-8 relative).
    assert diff / _norm(one) < (1e-5 if precision == "fp32" else 2e-2)
    assert _norm(acc) / _norm(one) == pytest.approx(1.0, rel=1e-5 if precision == "fp32" else 1e-2)


# ---------------------------------------------------------------- the pieces


def test_unscale_and_clip_returns_the_norm_and_clips_to_it():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([a, b], lr=0.1)
    for max_norm, after in ((0.0, 13.0), (20.0, 13.0), (6.5, 6.5)):
        a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([12.0])  # norm 13
        norm = unscale_and_clip(opt, [a, b], max_norm)
        assert float(norm) == pytest.approx(13.0)  # the norm before clipping (what the NaN check reads)
        assert math.hypot(*a.grad.tolist(), *b.grad.tolist()) == pytest.approx(after, rel=1e-5)
        torch.testing.assert_close(b.grad / a.grad[1], torch.tensor([3.0]))  # direction kept


def test_cpu_bf16_workaround_only_on_cpu_bf16():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert cpu_bf16_workaround("bf16", cpu) and cpu_bf16_workaround("BF16", cpu)
    for mode, dev in (("fp32", cpu), ("fp16", cpu), ("bf16", cuda), ("fp16", cuda), ("fp32", cuda)):
        assert not cpu_bf16_workaround(mode, dev)
        before = torch.backends.mkldnn.enabled
        with training_kernels(mode, dev):  # no device needed: only the oneDNN flag is read
            assert torch.backends.mkldnn.enabled == before
    with pytest.raises(RuntimeError), mkldnn_disabled():
        assert not torch.backends.mkldnn.enabled
        raise RuntimeError
    assert torch.backends.mkldnn.enabled  # restored on the way out of an exception too


def _conv_step(seed, precision, workaround):
    """The bug report's reproduction: one Conv3d, forward and backward; the conv ops it ran."""
    from torch.profiler import profile

    torch.manual_seed(seed)
    conv = torch.nn.Conv3d(3, 16, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False)
    x = torch.randn(4, 3, 4, 32, 32)
    from vidrec.engine.precision import autocast

    with profile() as prof, mkldnn_disabled(workaround):
        with autocast(precision, torch.device("cpu")):
            y = conv(x)
        y.float().square().mean().backward()
    ops = {e.name for e in prof.events() if "conv" in e.name}
    return conv.weight.grad, ops


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")
def test_cpu_bf16_workaround_avoids_onednn_convolutions():
    """With the workaround no oneDNN convolution runs (on CPUs with AVX512_BF16 they would, and
    their weight gradients can be NaN); the profiler check itself sees oneDNN when it runs (fp32)."""
    _, ops = _conv_step(0, "fp32", workaround=False)
    assert "aten::mkldnn_convolution" in ops  # the check can see oneDNN
    for seed in range(4):
        grad, ops = _conv_step(seed, "bf16", workaround=True)
        assert not any("mkldnn" in op for op in ops), ops
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


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
