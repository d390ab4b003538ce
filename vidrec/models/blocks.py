"""Residual blocks of the ResNet3D family, one small module per block kind.

Module names (conv1, bn1, ..., downsample) follow torchvision's ResNet and
the iResNet authors' 2D code, so 2D ImageNet checkpoints map onto them key for
key. ``temporal=False`` gives temporal kernels of 1: the 2D networks.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

Triple = Tuple[int, int, int]


def conv3x3x3(cin: int, cout: int, stride: Triple = (1, 1, 1), groups: int = 1,
              temporal: bool = True) -> nn.Conv3d:
    kt = 3 if temporal else 1
    return nn.Conv3d(cin, cout, (kt, 3, 3), stride=stride, padding=(kt // 2, 1, 1),
                     groups=groups, bias=False)


def conv1x1x1(cin: int, cout: int, stride: Triple = (1, 1, 1)) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, 1, stride=stride, bias=False)


def projection(cin: int, cout: int, stride: Triple, improved: bool, norm: bool = True,
               ) -> Optional[nn.Module]:
    """Shortcut for a block whose shape changes (None: identity).

    Baseline: strided 1x1x1 conv (+BN). Improved (iResNet): max pool with the
    block's stride -> 1x1x1 conv -> BN, so the shortcut sees every position
    instead of one in eight. The pool is 3 wide in time only where time is
    strided.
    """
    strided = stride != (1, 1, 1)
    if not strided and cin == cout:
        return None
    layers = []
    if improved and strided:
        kernel = (3 if stride[0] > 1 else 1, 3, 3)
        layers.append(nn.MaxPool3d(kernel, stride=stride, padding=tuple(k // 2 for k in kernel)))
        stride = (1, 1, 1)
        if cin == cout:
            return nn.Sequential(*layers)
    layers.append(conv1x1x1(cin, cout, stride))
    if norm:
        layers.append(nn.BatchNorm3d(cout))
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------
# Baseline (post-activation) blocks, as in He et al. 2015 / torchvision.
# ----------------------------------------------------------------------------
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: Triple = (1, 1, 1),
                 downsample: Optional[nn.Module] = None, temporal: bool = True):
        super().__init__()
        self.conv1 = conv3x3x3(cin, planes, stride, temporal=temporal)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv3x3x3(planes, planes, temporal=temporal)
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def fold_pairs(self):
        """(conv, BN) attribute pairs where the BN reads only that conv's output (models/fuse.py)."""
        return [("conv1", "bn1"), ("conv2", "bn2")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1x1 -> 3x3x3 (carries the stride) -> 1x1x1, ReLU after the addition.

    ``width``/``groups`` make it a ResNeXt block (wide grouped 3x3x3) and
    ``expansion`` (output = planes * expansion) a ResGroup block (output
    narrower than the grouped conv).
    """
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: Triple = (1, 1, 1),
                 downsample: Optional[nn.Module] = None, temporal: bool = True,
                 groups: int = 1, width: Optional[int] = None,
                 expansion: Optional[int] = None):
        super().__init__()
        width = width or planes
        cout = planes * (expansion or self.expansion)
        self.conv1 = conv1x1x1(cin, width)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = conv3x3x3(width, width, stride, groups, temporal)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = conv1x1x1(width, cout)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def fold_pairs(self):
        """(conv, BN) attribute pairs where the BN reads only that conv's output (models/fuse.py)."""
        return [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


# ----------------------------------------------------------------------------
# Stage-based blocks (ResStage / iResNet, the paper's Section 3.1).
# ----------------------------------------------------------------------------
START, MIDDLE, END = "start", "middle", "end"


class _StageBlock(nn.Module):
    """Shared wiring of the Start / Middle / End blocks.

    Start:  conv-BN-ReLU ... conv-BN, + projection (no ReLU after the add).
    Middle: [BN0]-ReLU-conv ... conv, + identity (nothing after the add).
    End:    [BN0]-ReLU-conv ... conv, + identity, then BN-ReLU on the sum.
    BN0 is dropped where the input is already normalised (the first non-start
    block of a stage). Subclasses provide ``residual`` (the inner convs).
    """

    def _init_stage(self, cin: int, cout: int, position: str, bn0: bool,
                    downsample: Optional[nn.Module]) -> None:
        self.position = position
        if position != START and bn0:
            self.bn0 = nn.BatchNorm3d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.has_bn0 = position != START and bn0

    def preact(self, x: torch.Tensor) -> torch.Tensor:
        if self.position == START:
            return x
        # Without BN0 the input itself would be rectified: not in place, it is also the identity.
        return self.relu(self.bn0(x)) if self.has_bn0 else torch.relu(x)

    def fold_pairs(self):
        """(conv, BN) pairs whose BN reads only that conv (models/fuse.py): the inner ones, and the last
        conv's in a Start block (in Middle/End blocks the last BN follows the addition)."""
        return list(self.inner_pairs) + ([self.last_pair] if self.position == START else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.residual(self.preact(x))
        if self.position == START:
            out = self.out_bn(out)
        out = out + identity
        if self.position == END:
            out = self.relu(self.out_bn(out))
        return out


class StageBasicBlock(_StageBlock):
    inner_pairs, last_pair = [("conv1", "bn1")], ("conv2", "bn2")
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: Triple = (1, 1, 1),
                 downsample: Optional[nn.Module] = None, temporal: bool = True,
                 position: str = MIDDLE, bn0: bool = True):
        super().__init__()
        self._init_stage(cin, planes, position, bn0, downsample)
        self.conv1 = conv3x3x3(cin, planes, stride, temporal=temporal)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv3x3x3(planes, planes, temporal=temporal)
        if position in (START, END):
            self.bn2 = nn.BatchNorm3d(planes)

    @property
    def out_bn(self) -> nn.Module:
        return self.bn2

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.bn1(self.conv1(x))))


class StageBottleneck(_StageBlock):
    inner_pairs, last_pair = [("conv1", "bn1"), ("conv2", "bn2")], ("conv3", "bn3")
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: Triple = (1, 1, 1),
                 downsample: Optional[nn.Module] = None, temporal: bool = True,
                 position: str = MIDDLE, bn0: bool = True, groups: int = 1,
                 width: Optional[int] = None, expansion: Optional[int] = None):
        super().__init__()
        width = width or planes
        cout = planes * (expansion or self.expansion)
        self._init_stage(cin, cout, position, bn0, downsample)
        self.conv1 = conv1x1x1(cin, width)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = conv3x3x3(width, width, stride, groups, temporal)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = conv1x1x1(width, cout)
        if position in (START, END):
            self.bn3 = nn.BatchNorm3d(cout)

    @property
    def out_bn(self) -> nn.Module:
        return self.bn3

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.conv3(out)


# ----------------------------------------------------------------------------
# Pre-activation blocks (He et al. 2016, "Identity Mappings").
# ----------------------------------------------------------------------------
class PreActBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: Triple = (1, 1, 1),
                 downsample: Optional[nn.Module] = None, temporal: bool = True):
        super().__init__()
        self.bn1 = nn.BatchNorm3d(cin)
        self.conv1 = conv3x3x3(cin, planes, stride, temporal=temporal)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv2 = conv3x3x3(planes, planes, temporal=temporal)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def fold_pairs(self):
        """Nothing to fold: every BN comes before its conv (models/fuse.py)."""
        return []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(preact)
        out = self.conv1(preact)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + identity


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv x3 + shortcut; the projection sees the pre-activated input."""
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: Triple = (1, 1, 1),
                 downsample: Optional[nn.Module] = None, temporal: bool = True,
                 groups: int = 1, width: Optional[int] = None,
                 expansion: Optional[int] = None):
        super().__init__()
        width = width or planes
        self.bn1 = nn.BatchNorm3d(cin)
        self.conv1 = conv1x1x1(cin, width)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv2 = conv3x3x3(width, width, stride, groups, temporal)
        self.bn3 = nn.BatchNorm3d(width)
        self.conv3 = conv1x1x1(width, planes * (expansion or self.expansion))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def fold_pairs(self):
        """Nothing to fold: every BN comes before its conv (models/fuse.py)."""
        return []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(preact)
        out = self.conv1(preact)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + identity
