"""An independent, deliberately plain 2D iResNet written from the paper's text.

Used only as a reference: vidrec's 2D mode and 2D->3D inflation must agree
with it. Module names follow the authors' published 2D layout.
"""
import torch
from torch import nn


class RefBottleneck(nn.Module):
    def __init__(self, cin, planes, stride=1, downsample=None, kind="middle", bn0=True):
        super().__init__()
        self.kind, self.use_bn0 = kind, bn0 and kind != "start"
        if self.use_bn0:
            self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        if kind in ("start", "end"):
            self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        if self.kind == "start":
            out = x
        elif self.use_bn0:
            out = torch.relu(self.bn0(x))
        else:
            out = torch.relu(x)
        out = torch.relu(self.bn1(self.conv1(out)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.conv3(out)
        if self.kind == "start":
            out = self.bn3(out)
        out = out + (self.downsample(x) if self.downsample is not None else x)
        if self.kind == "end":
            out = torch.relu(self.bn3(out))
        return out


class RefIResNet50(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            down = nn.Sequential(nn.MaxPool2d(3, 2, 1), nn.Conv2d(cin, planes * 4, 1, bias=False),
                                 nn.BatchNorm2d(planes * 4))
            blocks = [RefBottleneck(cin, planes, 2, down, "start")]
            for j in range(1, n - 1):
                blocks.append(RefBottleneck(planes * 4, planes, kind="middle", bn0=j > 1))
            blocks.append(RefBottleneck(planes * 4, planes, kind="end", bn0=n > 2))
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = planes * 4
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean((2, 3)))
