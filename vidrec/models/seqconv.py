"""SeqConv and the SeqResNet3D / SeqResNeXt3D networks (Huang et al., ICCVW 2019).

A sequentially aggregated convolution (``SeqConv3d``) replaces one wide
conv-BN-ReLU. Its C_out outputs are made as n = C_out / k groups, one after
another: group i is a small transform F_i of a window over the sequence
[x, y_1, ..., y_{i-1}] (input, then the groups made so far):

    windowed (default): the window is the last C_in channels of the sequence
                        (drop the oldest k, append y_i), so every F_i is as cheap
                        as the first and sees the freshest groups;
    dense:              the window is the whole sequence (DenseNet-like).

F_i = 1x1x1 (window -> k) - BN - ReLU - 3x3x3 (k -> k, ``groups`` sub-groups:
SeqResNeXt) [+ shortcut slice] - BN - ReLU. The residual stream carries the
pre-BN sums ("raw"), the next layer reads the rectified ones ("act"), so a
residual shortcut is added group by group *inside* the second SeqConv of a
block and later groups already see the updated stream.

The networks follow the authors' ImageNet templates (stem: two 3x3 convs, a
dense SeqConv and a strided grouped conv; stages of two-SeqConv residual
blocks; between stages a SeqConv that widens the signal, concatenated with
its input and shrunk by a strided grouped conv; a 1x1 "blend" conv before
the pool), inflated like iResNet3D: every 3x3 becomes 3x3x3 (the two stem
convs give the same temporal reach, 5, as ResNet3D's 5x7x7 stem), stages
sit at 56/28/14/7 pixels, stages 3 and 4 halve time, and the head is
pool - dropout - fc. Deviations from the 2D code are listed in docs/models.md.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .base import ClipNet
from .blocks import Triple, conv1x1x1, conv3x3x3
from .registry import keyword_signature, register_model

Pair = Tuple[torch.Tensor, torch.Tensor]  # (raw: pre-BN, act: BN-ReLU of raw)


class SeqFilter(nn.Module):
    """F_i: 1x1x1 (window -> k) - BN - ReLU - 3x3x3 (k -> k) [+ shortcut] - BN - ReLU."""

    def __init__(self, cin: int, k: int, groups: int = 1, temporal: bool = True):
        super().__init__()
        self.conv1 = conv1x1x1(cin, k)
        self.bn1 = nn.BatchNorm3d(k)
        self.conv2 = conv3x3x3(k, k, groups=groups, temporal=temporal)
        self.bn2 = nn.BatchNorm3d(k)
        self.relu = nn.ReLU(inplace=True)

    def fold_pairs(self):
        """bn1 reads conv1 only; bn2 reads raw, which is also handed on (models/fuse.py)."""
        return [("conv1", "bn1")]

    def forward(self, window: torch.Tensor, shortcut: Optional[torch.Tensor] = None) -> Pair:
        raw = self.conv2(self.relu(self.bn1(self.conv1(window))))
        if shortcut is not None:
            raw = raw + shortcut
        return raw, self.relu(self.bn2(raw))


class SeqConv3d(nn.Module):
    """Sequentially aggregated 3x3x3 convolution, a drop-in for a wide conv-BN-ReLU.

    Args:
        in_channels, out_channels: as for a conv; ``out_channels`` must be a
            multiple of ``k``.
        k: channels per group (the paper's granularity).
        windowed: sliding window of C_in channels (needs C_in >= k); False: dense.
        groups: groups of each F_i's 3x3x3 conv (1: SeqResNet, >1: SeqResNeXt).
        zero_init: zero the 3x3x3 convs so that, inside a residual block, the
            layer starts as the identity of its shortcut.

    ``forward(x)`` returns the rectified output like conv-BN-ReLU;
    ``forward_pair(x, shortcut)`` also returns the pre-BN sums.
    """

    def __init__(self, in_channels: int, out_channels: int, k: int, windowed: bool = True,
                 groups: int = 1, temporal: bool = True, zero_init: bool = False):
        super().__init__()
        if out_channels % k:
            raise ValueError(f"out_channels ({out_channels}) must be a multiple of k ({k})")
        if windowed and in_channels < k:
            raise ValueError(f"a windowed SeqConv needs in_channels ({in_channels}) >= k ({k})")
        self.in_channels, self.out_channels, self.k, self.windowed = in_channels, out_channels, k, windowed
        self.zero_init = zero_init
        groups = math.gcd(groups, k)
        self.filters = nn.ModuleList(
            SeqFilter(in_channels if windowed else in_channels + i * k, k, groups, temporal)
            for i in range(out_channels // k)
        )
        if zero_init:
            for f in self.filters:
                nn.init.zeros_(f.conv2.weight)

    def forward_pair(self, x: torch.Tensor, shortcut: Optional[torch.Tensor] = None) -> Pair:
        window, raws, acts = x, [], []
        for i, f in enumerate(self.filters):
            raw, act = f(window, None if shortcut is None else shortcut[:, i * self.k:(i + 1) * self.k])
            raws.append(raw)
            acts.append(act)
            window = torch.cat([window[:, self.k:] if self.windowed else window, act], 1)
        return torch.cat(raws, 1), torch.cat(acts, 1)

    def forward(self, x: torch.Tensor, shortcut: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.forward_pair(x, shortcut)[1]

    def extra_repr(self) -> str:
        kind = "windowed" if self.windowed else "dense"
        return f"{self.in_channels}, {self.out_channels}, k={self.k}, {kind}"


class ConvBNReLU(nn.Module):
    """conv - BN - ReLU that also hands back the pre-BN output (the raw stream)."""

    def __init__(self, conv: nn.Conv3d):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm3d(conv.out_channels)
        self.relu = nn.ReLU(inplace=True)

    def fold_pairs(self):
        """Nothing: the pre-BN output is handed on too (models/fuse.py)."""
        return []

    def forward(self, x: torch.Tensor) -> Pair:
        raw = self.conv(x)
        return raw, self.relu(self.bn(raw))


class SeqBlock(nn.Module):
    """Residual block: two windowed SeqConvs; the shortcut joins inside the second."""

    def __init__(self, width: int, k: int, groups: int = 1, temporal: bool = True):
        super().__init__()
        self.conv1 = SeqConv3d(width, width, k, groups=groups, temporal=temporal)
        self.conv2 = SeqConv3d(width, width, k, groups=groups, temporal=temporal, zero_init=True)

    def forward(self, x: Pair) -> Pair:
        raw, act = x
        return self.conv2.forward_pair(self.conv1(act), shortcut=raw)


class SeqTransition(nn.Module):
    """Between stages: widen with a SeqConv, concatenate, shrink with a strided grouped conv."""

    def __init__(self, cin: int, cout: int, k: int, groups: int, shrink_groups: int,
                 stride: Triple, temporal: bool = True):
        super().__init__()
        self.extend = SeqConv3d(cin, cout - cin, k, groups=groups, temporal=temporal)
        self.shrink = ConvBNReLU(conv3x3x3(cout, cout, stride, math.gcd(shrink_groups, cout), temporal))

    def forward(self, x: Pair) -> Pair:
        act = x[1]
        return self.shrink(torch.cat([act, self.extend(act)], 1))


class SeqResNet3D(ClipNet):
    """SeqResNet-B / SeqResNeXt, inflated to clips of shape (N, 3, T, H, W).

    Args:
        layers: residual blocks per stage.
        widening: stage widths are 64 * widening * (1, 2, 4, 8).
        k: SeqConv group width per stage (the paper's granularity).
        groups: sub-groups of the F_i 3x3x3 convs per stage (SeqResNeXt).
        num_classes, dropout, width_mult, temporal, in_chans: as for ResNet3D.
    """

    def __init__(self, layers: Sequence[int], widening: int = 2, k: Sequence[int] = (32, 64, 64, 128),
                 groups: Sequence[int] = (1, 1, 1, 1), num_classes: int = 400, dropout: float = 0.5,
                 width_mult: float = 1.0, temporal: bool = True, in_chans: int = 3):
        super().__init__()
        self.temporal, self.in_chans = temporal, in_chans
        scale = lambda c: max(1, round(c * width_mult))  # noqa: E731
        widths = [scale(64 * widening * 2 ** i) for i in range(4)]
        k = [scale(g) for g in k]
        stem_width = scale(32)

        # Stem: 3x3x3/2 -> 3x3x3 -> dense SeqConv -> 3x3x3/2 grouped: 56x56, widths[0].
        self.conv1 = conv3x3x3(in_chans, stem_width, (1, 2, 2), temporal=temporal)
        self.bn1 = nn.BatchNorm3d(stem_width)
        self.conv2 = conv3x3x3(stem_width, stem_width, temporal=temporal)
        self.bn2 = nn.BatchNorm3d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.stem_seq = SeqConv3d(stem_width, widths[0], k[0], windowed=False, groups=groups[0],
                                  temporal=temporal)
        self.stem_shrink = ConvBNReLU(conv3x3x3(widths[0], widths[0], (1, 2, 2),
                                                math.gcd(widths[0] // k[0] * groups[0], widths[0]), temporal))

        ts = 2 if temporal else 1
        strides = [None, (1, 2, 2), (ts, 2, 2), (ts, 2, 2)]
        for i in range(4):
            stage = []
            if i > 0:
                stage.append(SeqTransition(widths[i - 1], widths[i], k[i - 1], groups[i - 1],
                                           widths[i] // k[i] * groups[i], strides[i], temporal))
            stage += [SeqBlock(widths[i], k[i], groups[i], temporal) for _ in range(layers[i])]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.blend = ConvBNReLU(conv1x1x1(widths[3], widths[3]))
        self.num_features = widths[3]
        self._make_head(num_classes, dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        super()._init_weights()
        for m in self.modules():  # residual blocks start as identities
            if isinstance(m, SeqConv3d) and m.zero_init:
                for f in m.filters:
                    nn.init.zeros_(f.conv2.weight)

    def fold_pairs(self):
        """The stem's two conv-BN pairs (models/fuse.py)."""
        return [("conv1", "bn1"), ("conv2", "bn2")]

    def forward_stem(self, x: torch.Tensor) -> Pair:
        self.check_input(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.stem_shrink(self.stem_seq(x))

    def forward_stages(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Rectified feature maps after each stage (the last one after the blend conv)."""
        x = self.forward_stem(x)
        outs = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            outs.append(x[1])
        outs[-1] = self.blend(outs[-1])[1]
        return outs


# ---------------------------------------------------------------------------
# Registry: the authors' ImageNet templates; the name's number counts SeqConv
# layers as one layer each (stem 4 + 2 per block + 2 per transition + blend + fc).
# ---------------------------------------------------------------------------
TEMPLATES = {
    "seqresnet3d_b22": dict(layers=(1, 1, 2, 1), widening=2, k=(32, 64, 64, 128)),
    "seqresnet3d_b42": dict(layers=(3, 4, 5, 3), widening=2, k=(32, 64, 64, 128)),
    "seqresnext3d_24": dict(layers=(1, 1, 3, 1), widening=4, k=(32, 64, 64, 128), groups=(8, 8, 4, 4)),
}


def _register(name: str, template: dict) -> None:
    def build(**kwargs) -> SeqResNet3D:
        return SeqResNet3D(**template, **kwargs)

    build.__doc__ = f"{name}: {template}."
    build.__signature__ = keyword_signature(SeqResNet3D, tuple(template))
    register_model(name, build)


for _name, _template in TEMPLATES.items():
    _register(_name, _template)
