"""An independent, deliberately plain 2D ResGroup / iResGroup written from the paper's text.

Used only as a reference: vidrec's 2D mode must agree with it. Module names
follow the authors' published 2D layout (``resgroup.py``, ``iresgroup.py``).
"""
import torch
from torch import nn


class RefResGroupBlock(nn.Module):
    """1x1 (cin->W) - 3x3 grouped (W->W) - 1x1 (W->W/2); kind: plain / start / middle / end."""

    def __init__(self, cin, width, groups, stride=1, downsample=None, kind="plain", bn0=True):
        super().__init__()
        self.kind, self.use_bn0 = kind, bn0 and kind in ("middle", "end")
        if self.use_bn0:
            self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width // 2, 1, bias=False)
        if kind in ("plain", "start", "end"):
            self.bn3 = nn.BatchNorm2d(width // 2)
        self.downsample = downsample

    def forward(self, x):
        out = x
        if self.kind in ("middle", "end"):
            out = torch.relu(self.bn0(x) if self.use_bn0 else x)
        out = torch.relu(self.bn1(self.conv1(out)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.conv3(out)
        if self.kind in ("plain", "start"):
            out = self.bn3(out)
        out = out + (self.downsample(x) if self.downsample is not None else x)
        if self.kind == "plain":
            out = torch.relu(out)
        if self.kind == "end":
            out = torch.relu(self.bn3(out))
        return out


class RefResGroup50(nn.Module):
    def __init__(self, groups=(8, 16, 32, 64), improved=False, num_classes=1000):
        super().__init__()
        self.improved = improved
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (width, n, g) in enumerate(zip((256, 512, 1024, 2048), (3, 4, 6, 3), groups)):
            stride = 2 if (i > 0 or improved) else 1
            if improved:
                down = nn.Sequential(nn.MaxPool2d(3, 2, 1), nn.Conv2d(cin, width // 2, 1, bias=False),
                                     nn.BatchNorm2d(width // 2))
                blocks = [RefResGroupBlock(cin, width, g, stride, down, "start")]
                blocks += [RefResGroupBlock(width // 2, width, g, kind="middle", bn0=j > 1) for j in range(1, n - 1)]
                blocks.append(RefResGroupBlock(width // 2, width, g, kind="end", bn0=n > 2))
            else:
                down = nn.Sequential(nn.Conv2d(cin, width // 2, 1, stride, bias=False), nn.BatchNorm2d(width // 2))
                blocks = [RefResGroupBlock(cin, width, g, stride, down)]
                blocks += [RefResGroupBlock(width // 2, width, g) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = width // 2
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        if not self.improved:
            x = nn.functional.max_pool2d(x, 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean((2, 3)))
