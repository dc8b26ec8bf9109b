"""PixColor's refinement network (Guadarrama et al. 2017, section 3.2, table 2): the grey
picture at a working resolution and the low-resolution chroma upsampled bilinearly ->
full-resolution chroma. The paper's encoder widths, bilinear upsampling in the decoder; its
last 1x1 layer starts at zero and its output is added to the upsampled chroma, so an
untrained network begins at plain bilinear upsampling, the paper's "unrefined" baseline.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class RefinementNetwork(nn.Module):
    """The refinement network (section 3.2, table 2): an encoder to stride 8 (widths w, 2w,
    2w, 4w, 4w, 8w, 8w, 4w), a decoder of 3x3 convolutions with bilinear upsampling to
    stride 2 (2w, w, w/2), a 1x1 layer to chroma, and bilinear upsampling to full size. The
    result is a correction added to the bilinearly upsampled low-resolution chroma."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            _conv(3, w, 2), _conv(w, 2 * w), _conv(2 * w, 2 * w, 2), _conv(2 * w, 4 * w),
            _conv(4 * w, 4 * w, 2), _conv(4 * w, 8 * w), _conv(8 * w, 8 * w), _conv(8 * w, 4 * w),
        )
        self.decode8 = nn.Sequential(_conv(4 * w, 2 * w), _conv(2 * w, 2 * w))
        self.decode4 = nn.Sequential(_conv(2 * w, w), _conv(w, w))
        self.decode2 = nn.Sequential(_conv(w, w // 2), _conv(w // 2, w // 2))
        self.out = nn.Conv2d(w // 2, 2, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, grey: torch.Tensor, low_chroma: torch.Tensor) -> torch.Tensor:
        """Grey ``(B, 1, H, W)`` in [0, 1] (H, W multiples of 8) and low-resolution chroma
        ``(B, 2, S, S)`` -> chroma ``(B, 2, H, W)``."""
        size = tuple(grey.shape[-2:])
        coarse = _upsample(low_chroma, size)
        x = self.encoder(torch.cat((grey - 0.5, coarse - 0.5), 1))
        x = self.decode8(x)
        x = self.decode4(_upsample(x, (size[0] // 4, size[1] // 4)))
        x = self.decode2(_upsample(x, (size[0] // 2, size[1] // 2)))
        return coarse + _upsample(self.out(x), size)
