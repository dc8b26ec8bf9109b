"""PixColor's conditioning network with its adaptation network (Guadarrama et al. 2017,
figure 4, table 2): the grey picture, resized to ``input_size`` square, turned into
features on the ``size x size`` grid of the chroma image by a small ResNet of stride 8 (the
paper uses ResNet-101) and three 3x3 convolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from vidcolor.ops import color


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with group normalisation and an identity (or 1x1) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1), _norm(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1), _norm(cout),
        )
        self.shortcut = nn.Identity() if cin == cout and stride == 1 else nn.Conv2d(cin, cout, 1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ConditioningNetwork(nn.Module):
    """The conditioning and adaptation networks (table 2): a 7x7 stride-2 convolution, two
    stride-2 residual stages, ``blocks`` residual blocks at stride 8, then three 3x3
    convolutions to ``features`` channels on the ``size x size`` grid."""

    def __init__(self, width: int, blocks: int, features: int, input_size: int, size: int):
        super().__init__()
        self.input_size, self.size = input_size, size
        self.stem = nn.Sequential(nn.Conv2d(1, width, 7, stride=2, padding=3), _norm(width), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(
            ResidualBlock(width, 2 * width, stride=2),
            ResidualBlock(2 * width, 4 * width, stride=2),
            *[ResidualBlock(4 * width, 4 * width) for _ in range(blocks)],
        )
        self.adaptation = nn.Sequential(
            nn.Conv2d(4 * width, features, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(features, features, 3, padding=1),
        )

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        """Grey level ``(B, 1, H, W)`` in [0, 1] -> features ``(B, F, size, size)``."""
        x = color.resize(grey, (self.input_size, self.input_size)) - 0.5
        features = self.adaptation(self.stages(self.stem(x)))
        return color.resize(features, (self.size, self.size))
