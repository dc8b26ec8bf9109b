"""The chroma image of PixColor (Guadarrama et al. 2017, section 3) in YCbCr: kornia's YCbCr
(Y, Cb, Cr in [0, 1], chroma offset by 0.5), chroma tensors ordered (Cr, Cb), the order the
PixelCNN draws them in; each channel quantised into ``bins`` equal bins over [0, 1] and
turned back into colour, through sRGB, as ab in Lab units.
"""

from __future__ import annotations

import kornia
import torch

from vidcolor.ops import color

CR, CB = 0, 1  # the colour channels of the chroma image, in the order they are drawn


def rgb_to_chroma(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` in [0, 1] -> YCbCr chroma ``(B, 2, H, W)`` ordered (Cr, Cb), in [0, 1]."""
    ycbcr = kornia.color.rgb_to_ycbcr(rgb.clamp(0.0, 1.0))
    return ycbcr[:, 1:].flip(1)


def chroma_to_ab(grey: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Luma Y ``(B, 1, H, W)`` and chroma (Cr, Cb) ``(B, 2, H, W)`` -> ab ``(B, 2, H, W)`` in
    Lab units, through sRGB clipped to its gamut."""
    rgb = kornia.color.ycbcr_to_rgb(torch.cat((grey, chroma.flip(1)), 1))
    return color.rgb_to_lab(rgb.clamp(0.0, 1.0))[:, 1:]


def quantize(chroma: torch.Tensor, bins: int) -> torch.Tensor:
    """Chroma in [0, 1] -> bin index in ``0 .. bins - 1`` (equal bins over [0, 1])."""
    return (chroma * bins).floor().clamp(0, bins - 1).long()


def bin_centres(index: torch.Tensor, bins: int) -> torch.Tensor:
    """Bin index -> the chroma value at the bin's centre."""
    return (index.float() + 0.5) / bins


def network_input(chroma: torch.Tensor) -> torch.Tensor:
    """Chroma in [0, 1] -> [-1, 1], what the PixelCNN reads."""
    return chroma * 2.0 - 1.0
