"""ResNet3D, PreActResNet3D, ResStage3D and iResNet3D (Duta et al., ICPR 2020).

One network class; the four families differ only in their wiring:

| wiring   | blocks               | stem max pool | projection shortcut          |
|----------|----------------------|---------------|------------------------------|
| baseline | post-activation      | yes           | strided 1x1x1 conv + BN      |
| preact   | pre-activation       | yes           | strided 1x1x1 conv (no BN)   |
| resstage | start / middle / end | yes           | strided 1x1x1 conv + BN      |
| iresnet  | start / middle / end | no            | max pool -> 1x1x1 conv -> BN |

Without the stem pool, iResNet's first stage downsamples itself (spatial
stride 2 on its first 3x3x3 conv). Stages 3 and 4 halve time.

``groups``, ``width_ratio`` and ``expansion`` reshape the bottleneck: ResNeXt
(wide grouped 3x3x3) and ResGroup (grouped 3x3x3 on the widest channels) are
the same network class; see ``families.py``.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Type, Union

import torch
from torch import nn

from . import blocks as B
from .base import ClipNet
from .registry import keyword_signature, register_model

WIRINGS = ("baseline", "preact", "resstage", "iresnet")
_BLOCKS = {
    ("baseline", "basic"): B.BasicBlock,
    ("baseline", "bottleneck"): B.Bottleneck,
    ("preact", "basic"): B.PreActBasicBlock,
    ("preact", "bottleneck"): B.PreActBottleneck,
    ("resstage", "basic"): B.StageBasicBlock,
    ("resstage", "bottleneck"): B.StageBottleneck,
    ("iresnet", "basic"): B.StageBasicBlock,
    ("iresnet", "bottleneck"): B.StageBottleneck,
}
# Blocks per stage, paper Table 9 (18/34 use basic blocks).
DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
    302: ("bottleneck", (4, 34, 58, 4)),
    404: ("bottleneck", (4, 46, 80, 4)),
}


class ResNet3D(ClipNet):
    """Inflated residual network for clips of shape (N, 3, T, H, W).

    Args:
        layers: blocks per stage.
        block: "basic" or "bottleneck".
        wiring: one of ``WIRINGS`` (see the module docstring).
        num_classes: classifier outputs (0: no classifier, features only).
        dropout: dropout before the classifier (paper: 0.5 for video).
        width_mult: scales every width; small values give fast CPU models.
        temporal: False gives temporal kernels and strides of 1 (the 2D network).
        groups: groups of the 3x3x3 convs, one value or one per stage.
        width_ratio: 3x3x3 width / planes (planes = 64, 128, 256, 512).
        expansion: block output / planes (default: the block's, 4 for bottlenecks).
    """

    def __init__(self, layers: Sequence[int], block: str = "bottleneck", wiring: str = "baseline",
                 num_classes: int = 400, dropout: float = 0.5, width_mult: float = 1.0,
                 temporal: bool = True, in_chans: int = 3,
                 groups: Union[int, Sequence[int]] = 1, width_ratio: float = 1.0,
                 expansion: Optional[int] = None):
        super().__init__()
        if wiring not in WIRINGS:
            raise ValueError(f"unknown wiring '{wiring}', expected one of {WIRINGS}")
        self.wiring, self.temporal, self.in_chans = wiring, temporal, in_chans
        block_cls: Type[nn.Module] = _BLOCKS[(wiring, block)]
        if block == "basic" and (groups != 1 or width_ratio != 1 or expansion):
            raise ValueError("groups / width_ratio / expansion need bottleneck blocks")
        self.expansion = expansion or block_cls.expansion
        self.width_ratio = width_ratio
        stage_groups = [groups] * 4 if isinstance(groups, int) else list(groups)
        widths = [max(1, round(64 * width_mult * 2 ** i)) for i in range(4)]
        stem_width = max(1, round(64 * width_mult))

        kt = 5 if temporal else 1
        self.conv1 = nn.Conv3d(in_chans, stem_width, (kt, 7, 7), stride=(1, 2, 2),
                               padding=(kt // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        stem_pool = wiring != "iresnet"
        self.maxpool = (nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
                        if stem_pool else nn.Identity())

        ts = 2 if temporal else 1
        strides = [(1, 1, 1) if stem_pool else (1, 2, 2), (1, 2, 2), (ts, 2, 2), (ts, 2, 2)]
        self.inplanes = stem_width
        self.layer1 = self._make_layer(block_cls, widths[0], layers[0], strides[0], stage_groups[0])
        self.layer2 = self._make_layer(block_cls, widths[1], layers[1], strides[1], stage_groups[1])
        self.layer3 = self._make_layer(block_cls, widths[2], layers[2], strides[2], stage_groups[2])
        self.layer4 = self._make_layer(block_cls, widths[3], layers[3], strides[3], stage_groups[3])
        self.num_features = self.inplanes
        if wiring == "preact":  # the last blocks leave the signal un-normalised
            self.final_bn = nn.BatchNorm3d(self.num_features)
            self.final_relu = nn.ReLU(inplace=True)

        self._make_head(num_classes, dropout)
        self._init_weights()

    def _make_layer(self, block_cls, planes: int, n: int, stride, groups: int = 1) -> nn.Sequential:
        cout = planes * self.expansion
        downsample = B.projection(self.inplanes, cout, stride, improved=self.wiring == "iresnet",
                                  norm=self.wiring != "preact")
        common = dict(temporal=self.temporal)
        if groups != 1 or self.width_ratio != 1 or self.expansion != block_cls.expansion:
            width = max(1, round(planes * self.width_ratio))
            # Narrow (width_mult) test models keep as many groups as divide the width.
            common.update(width=width, groups=math.gcd(groups, width), expansion=self.expansion)
        if self.wiring in ("resstage", "iresnet"):
            # Start block, middle blocks (the first without BN0), End block.
            specs = [dict(position=B.START)] + [
                dict(position=B.MIDDLE, bn0=i > 1) for i in range(1, n - 1)
            ] + ([dict(position=B.END, bn0=n > 2)] if n > 1 else [])
            if n == 1:  # a lone block is both start and end; treat it as start
                specs = [dict(position=B.START)]
        else:
            specs = [{} for _ in range(n)]
        layers = [block_cls(self.inplanes, planes, stride, downsample, **common, **specs[0])]
        self.inplanes = cout
        layers += [block_cls(cout, planes, **common, **spec) for spec in specs[1:]]
        return nn.Sequential(*layers)

    # ------------------------------------------------------------------ forward
    def fold_pairs(self):
        """The stem's conv-BN pair (models/fuse.py)."""
        return [("conv1", "bn1")]

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_stages(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Feature maps after each of the four stages (for detection-style heads)."""
        x = self.forward_stem(x)
        outs = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            outs.append(x)
        if self.wiring == "preact":
            outs[-1] = self.final_relu(self.final_bn(outs[-1]))
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Final feature map (N, num_features, T', H', W'), before pooling."""
        x = self.forward_stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.wiring == "preact":
            x = self.final_relu(self.final_bn(x))
        return x


# ---------------------------------------------------------------------------
# Registry entries: {family}_{depth}, e.g. iresnet3d_50.
# ---------------------------------------------------------------------------
FAMILIES = {
    "resnet3d": "baseline",
    "preact_resnet3d": "preact",
    "resstage3d": "resstage",
    "iresnet3d": "iresnet",
}


def _register(family: str, wiring: str, depth: int) -> None:
    block, layers = DEPTHS[depth]

    def build(**kwargs) -> ResNet3D:
        return ResNet3D(layers, block=block, wiring=wiring, **kwargs)

    build.__doc__ = f"{family}-{depth}: {wiring} wiring, {block} blocks {layers}."
    build.__signature__ = keyword_signature(ResNet3D, ("layers", "block", "wiring"))
    register_model(f"{family}_{depth}", build)


for _family, _wiring in FAMILIES.items():
    for _depth in DEPTHS:
        _register(_family, _wiring, _depth)
