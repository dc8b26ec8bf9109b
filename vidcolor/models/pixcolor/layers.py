"""The layers of PixColor's gated PixelCNN (van den Oord et al. 2016; Guadarrama et al.
2017, table 2): a vertical stack that sees the rows above, a horizontal stack that sees
the pixels to the left in the row, and masked convolutions that order the two colour
groups at the current pixel.

Channel ``c`` of every horizontal-stack layer belongs to colour channel ``c % 2`` (0: Cr,
1: Cb): at the current pixel a Cr channel sees no input, a Cb channel sees the pixel's Cr
(type A), and later layers let a channel see its own group and the groups before it (type
B), so no output depends on the current or later pixels, and the Cb logit of a pixel may
depend on its Cr, never the reverse.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def centre_mask(out_channels: int, in_channels: int, own: bool) -> torch.Tensor:
    """Which input channels an output channel may see at the current pixel ``(out, in)``:
    those of earlier colour groups, and of its own group when ``own`` (type B; type A
    without). The group of channel ``c`` is ``c % 2``."""
    out_group = torch.arange(out_channels)[:, None] % 2
    in_group = torch.arange(in_channels)[None, :] % 2
    return (in_group < out_group) | (own & (in_group == out_group))


def pad_vertical(x: torch.Tensor, half: int) -> torch.Tensor:
    """Zero padding for a ``(half + 1, 2 * half + 1)`` kernel whose last row is the current one."""
    return F.pad(x, (half, half, half, 0))


def pad_horizontal(x: torch.Tensor, half: int) -> torch.Tensor:
    """Zero padding for a ``(1, half + 1)`` kernel whose last tap is the current pixel."""
    return F.pad(x, (half, 0, 0, 0))


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Row ``i`` receives row ``i - 1`` (zeros in row 0): the vertical stack's view of the
    rows strictly above, as the horizontal stack may use it."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def gate(x: torch.Tensor) -> torch.Tensor:
    """The gated activation ``tanh(a) * sigmoid(b)`` of the two halves of the channels."""
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel's last tap (the current pixel, with the padding of
    ``pad_horizontal``) connects only the colour groups ``centre_mask`` allows."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], own: bool):
        super().__init__(in_channels, out_channels, kernel)
        mask = torch.ones_like(self.weight)
        mask[:, :, -1, -1] = centre_mask(out_channels, in_channels, own).float()
        self.register_buffer("mask", mask, persistent=False)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias)


class GatedBlock(nn.Module):
    """A gated PixelCNN block (van den Oord et al. 2016, figure 2) with the conditioning
    features added to both gates. The vertical stack at row ``i`` sees rows ``<= i`` and is
    passed to the horizontal stack shifted one row down; the horizontal stack has a
    residual connection through a masked 1x1 convolution."""

    def __init__(self, channels: int, kernel: int, features: int):
        super().__init__()
        self.half = kernel // 2
        self.vertical = nn.Conv2d(channels, 2 * channels, (self.half + 1, kernel))
        self.horizontal = MaskedConv2d(channels, 2 * channels, (1, self.half + 1), own=True)
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.residual = MaskedConv2d(channels, channels, (1, 1), own=True)
        self.condition = nn.Conv2d(features, 4 * channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacks ``(B, C, S, S)`` and this block's conditioning term ``(B, 4C, S, S)``."""
        vertical_term, horizontal_term = condition.chunk(2, 1)
        v_pre = self.vertical(pad_vertical(v, self.half))
        h_pre = self.horizontal(pad_horizontal(h, self.half)) + self.link(shift_down(v_pre)) + horizontal_term
        return gate(v_pre + vertical_term), h + self.residual(gate(h_pre))
