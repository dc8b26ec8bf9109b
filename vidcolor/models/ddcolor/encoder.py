"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", CVPR 2022) as DDColor's encoder.

A stem (4x4 convolution of stride 4, LayerNorm) and three downsamplings (LayerNorm, 2x2
convolution of stride 2) separate four stages of blocks: a 7x7 depthwise convolution,
LayerNorm over channels, a pointwise MLP of width 4C with GELU, a learned per-channel scale
(``gamma``) and the residual. DDColor reads each stage through an extra LayerNorm
(``norm0`` ... ``norm3``), which does not change what the next stage receives. ``norm``
(the classifier's pooled LayerNorm) is kept for the release's keys and not used.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-6
VARIANTS = {  # published encoders: depths and widths of the four stages
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
}


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of ``(B, C, H, W)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, EPS).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=EPS)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """The four stages; ``forward`` returns the outputs of ``norm0`` ... ``norm3``."""

    def __init__(self, depths: tuple[int, ...], dims: tuple[int, ...]):
        super().__init__()
        self.downsample_layers = nn.ModuleList([nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), ChannelNorm(dims[0]))])
        for i in range(1, 4):
            self.downsample_layers.append(nn.Sequential(ChannelNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], 2, 2)))
        self.stages = nn.ModuleList(nn.Sequential(*(Block(d) for _ in range(n))) for n, d in zip(depths, dims))
        for i, d in enumerate(dims):
            self.add_module(f"norm{i}", ChannelNorm(d))
        self.norm = nn.LayerNorm(dims[-1], eps=EPS)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            out.append(getattr(self, f"norm{i}")(x))
        return out


class Encoder(nn.Module):
    """The release's ``encoder.arch`` prefix."""

    def __init__(self, variant: str):
        super().__init__()
        self.arch = ConvNeXt(*VARIANTS[variant])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.arch(x)
