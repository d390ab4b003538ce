"""Inflate a 2D ImageNet checkpoint into a 3D network (Carreira & Zisserman, I3D).

Each 2D kernel is repeated over the 3D kernel's temporal extent and divided
by it, so a static clip gives the 2D network's activations on every frame
away from the temporal borders. BatchNorm is copied. Keys follow torchvision's
ResNet and the iResNet authors' 2D code, which vidrec's modules share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import torch
from torch import nn

from .weights import read_state_dict

CLASSIFIER_PREFIXES = ("fc.",)


@dataclass
class InflationReport:
    inflated: List[str] = field(default_factory=list)   # 2D kernels turned 3D
    copied: List[str] = field(default_factory=list)     # same shape, copied as is
    missing: List[str] = field(default_factory=list)    # in the 3D model, not in the file
    unexpected: List[str] = field(default_factory=list) # in the file, not in the model
    mismatched: List[str] = field(default_factory=list) # present in both, incompatible shapes
    skipped_classifier: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"{len(self.inflated)} kernels inflated", f"{len(self.copied)} tensors copied"]
        for name in ("missing", "unexpected", "mismatched", "skipped_classifier"):
            keys = getattr(self, name)
            if keys:
                parts.append(f"{name.replace('_', ' ')}: {', '.join(keys[:6])}"
                             + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else ""))
        return "; ".join(parts)


def inflate_weight(w2d: torch.Tensor, time: int) -> torch.Tensor:
    """(O, I, H, W) -> (O, I, time, H, W), repeated over time and divided by it."""
    return w2d.unsqueeze(2).repeat(1, 1, time, 1, 1) / time


def inflate_state_dict(state_2d: Dict[str, torch.Tensor], model: nn.Module,
                       keep_classifier: bool = False):
    """A state dict for ``model`` built from a 2D one, and the report of what happened."""
    target = model.state_dict()
    out: Dict[str, torch.Tensor] = {}
    report = InflationReport()
    for key, ref in target.items():
        if key.startswith(CLASSIFIER_PREFIXES) and not keep_classifier:
            if key in state_2d:
                report.skipped_classifier.append(key)
            continue
        if key not in state_2d:
            report.missing.append(key)
            continue
        src = state_2d[key]
        if src.dim() == 4 and ref.dim() == 5 and src.shape == ref.shape[:2] + ref.shape[3:]:
            out[key] = inflate_weight(src, ref.shape[2]).to(ref.dtype)
            report.inflated.append(key)
        elif src.shape == ref.shape:
            out[key] = src.to(ref.dtype)
            report.copied.append(key)
        else:
            report.mismatched.append(f"{key} {tuple(src.shape)} vs {tuple(ref.shape)}")
    report.unexpected = sorted(k for k in state_2d if k not in target
                               and not (k.startswith(CLASSIFIER_PREFIXES) and not keep_classifier))
    return out, report


def inflate_from_file(model: nn.Module, path: str | Path, keep_classifier: bool = False,
                      strict: bool = True) -> InflationReport:
    """Load a 2D checkpoint (safely) into ``model``; with ``strict`` any mismatch is an error."""
    state, report = inflate_state_dict(read_state_dict(path), model, keep_classifier)
    if strict and not report.ok:
        raise ValueError(f"cannot inflate {path} into {type(model).__name__}: {report.summary()}")
    model.load_state_dict(state, strict=False)
    return report
