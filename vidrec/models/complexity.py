"""Parameters and FLOPs, in fvcore's convention and in the paper's.

The paper's GFLOPs follow the 2019 "thop" rules: conv and fc as
multiply-adds, BatchNorm 4 ops per element, ReLU 1 per element (a ReLU module
reused inside a block counts only its last call, because thop assigned rather
than accumulated), max pool = kernel volume x outputs, adaptive average pool =
(kernel + 1) x outputs, additions free. fvcore counts conv/fc multiply-adds and
BatchNorm (2 per element in eval) only.

One thop quirk matters for the 2D check: ``prod(Tensor([kernel_size]))`` of
a 2D pool declared with an int kernel (``MaxPool2d(3)``) is 3, not 9. The
paper's 2D figures (iResNet-50: 4.18, not 4.19) carry it, so for 2D-mode
models (``temporal=False``) max pools count k, not k*k, per output. Both are reported so users can compare
with the paper and with other toolkits.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, Sequence

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _paper_ops(module: nn.Module, inputs, output, int_kernel_pools: bool = False) -> int:
    x = inputs[0]
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output.numel() * (per_output + (module.bias is not None))
    if isinstance(module, nn.Linear):
        return output.numel() * (2 * module.in_features - 1)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return 4 * output.numel()
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU)):
        return output.numel()
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        k = module.kernel_size
        k = k if isinstance(k, tuple) else (k,) * (x.dim() - 2)
        return (k[-1] if int_kernel_pools else math.prod(k)) * output.numel()
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
        kernel = math.prod(i // o for i, o in zip(x.shape[2:], output.shape[2:]))
        return (kernel + 1) * output.numel()
    return 0


@torch.no_grad()
def paper_flops(model: nn.Module, input_shape: Sequence[int]) -> float:
    """FLOPs (not G) by the paper's convention for one forward pass in eval mode."""
    quirk = getattr(model, "temporal", True) is False
    last_call: Dict[nn.Module, int] = {}

    def hook(m, i, o):
        last_call[m] = _paper_ops(m, i, o, quirk)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(*input_shape, device=_device_of(model)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return float(sum(last_call.values()))


@torch.no_grad()
def fvcore_flops(model: nn.Module, input_shape: Sequence[int]) -> float:
    """FLOPs (multiply-adds, fvcore's convention) for one forward pass in eval mode."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, torch.zeros(*input_shape, device=_device_of(model)))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        return float(analysis.total())
    finally:
        model.train(was_training)


def model_complexity(model: nn.Module, input_shape: Sequence[int] = (1, 3, 16, 224, 224)) -> dict:
    """Params and GFLOPs (fvcore and paper convention) at ``input_shape``."""
    return {
        "params": count_params(model),
        "fvcore_gflops": fvcore_flops(model, input_shape) / 1e9,
        "paper_gflops": paper_flops(model, input_shape) / 1e9,
        "input_shape": tuple(input_shape),
    }


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table of ``model_complexity`` results with a ``name`` each."""
    header = f"{'model':<24} {'input':<18} {'params':>14} {'fvcore GFLOPs':>14} {'paper GFLOPs':>13}"
    lines = [header, "-" * len(header)]
    for r in rows:
        shape = "x".join(str(s) for s in r["input_shape"][1:])
        lines.append(f"{r['name']:<24} {shape:<18} {r['params']:>14,} "
                     f"{r['fvcore_gflops']:>14.2f} {r['paper_gflops']:>13.2f}")
    return "\n".join(lines)


def complexity_rows(names: Sequence[str], input_shape: Sequence[int], **model_kwargs) -> list:
    """``model_complexity`` for several registered models, each row named."""
    from .registry import create

    rows = []
    for name in names:
        row = model_complexity(create(name, **model_kwargs), input_shape)
        row["name"] = name
        rows.append(row)
    return rows
