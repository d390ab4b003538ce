"""Inference fast path: fold BatchNorm into the convolution before it.

In eval mode ``bn(conv(x))`` is an affine map of ``conv(x)``, so it can be
absorbed into the conv's weights and bias: one pass over memory fewer per
BN. Only a BN that directly follows a conv is folded; the pre-activation
BN0 of middle/end blocks and the End block's BN after the addition stay
(they have no conv right before them).
"""
from __future__ import annotations

import copy
from typing import Iterator, Tuple

import torch
from torch import nn


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv3d, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Absorb ``bn`` (eval statistics) into ``conv`` in place."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def _pairs(model: nn.Module) -> Iterator[Tuple[nn.Module, str, str]]:
    """(parent, conv attribute, bn attribute) for every conv directly followed by a BN.

    Each module that holds BatchNorms says which ones follow a conv (``fold_pairs()``;
    only its ``forward`` knows); in a ``Sequential`` a BN right after a conv does. A
    module with BatchNorms and no ``fold_pairs`` raises: a new block type must say how
    it folds rather than be silently left unfolded.
    """
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                if isinstance(module._modules[a], nn.Conv3d) and isinstance(
                        module._modules[b], nn.modules.batchnorm._BatchNorm):
                    yield module, a, b
        elif hasattr(module, "fold_pairs"):
            for conv, bn in module.fold_pairs():
                yield module, conv, bn
        elif any(isinstance(c, nn.modules.batchnorm._BatchNorm) for c in module.children()):
            raise TypeError(f"{type(module).__name__} holds BatchNorm layers but has no fold_pairs(); "
                            "add one saying which (conv, BN) pairs it may fold (models/fuse.py)")


def fold_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` with conv->BN pairs folded (BN replaced by Identity).

    The START/END blocks read their output BN through ``out_bn``; a folded
    start block gets an Identity there, which is what the folded conv needs.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    for parent, conv_name, bn_name in list(_pairs(model)):
        conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
        if isinstance(bn, nn.Identity):
            continue
        fold_conv_bn(conv, bn)
        setattr(parent, bn_name, nn.Identity())
    return model
