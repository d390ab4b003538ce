"""The clip-classifier API shared by every vidrec backbone.

A backbone builds its stem and stages and sets ``in_chans``, ``num_features``,
``avgpool``, ``dropout``, ``fc`` and ``num_classes``; it implements
``forward_stages``. Everything a trainer, an evaluator or a detection-style
head needs (input check, features, embedding, classifier swap) lives here once.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn


class ClipNet(nn.Module):
    in_chans: int = 3
    num_features: int

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 5 or x.shape[1] != self.in_chans:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"expected a clip batch of shape (N, {self.in_chans}, T, H, W), got {got}"
            )

    def forward_stages(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Feature maps after each of the four stages (for detection-style heads)."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Final feature map (N, num_features, T', H', W'), before pooling."""
        return self.forward_stages(x)[-1]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool -> (embedding) -> dropout -> classifier."""
        x = torch.flatten(self.avgpool(x), 1)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier, e.g. to fine-tune on another label set."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _init_weights(self) -> None:
        """Kaiming normal (fan_out, ReLU gain) for convs; BN gamma 1, beta 0 (the paper's init)."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_head(self, num_classes: int, dropout: float) -> None:
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes
