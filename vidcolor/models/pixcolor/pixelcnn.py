"""The conditional PixelCNN of PixColor (Guadarrama et al. 2017, section 3, table 2) over the
``size x size`` chroma image, pixel by pixel in raster order and Cr before Cb::

    p(y | x) = prod_i p(y(i,r) | y(1:i-1,:), x) p(y(i,b) | y(i,r), y(1:i-1,:), x)

A masked first layer (type A), gated blocks with the conditioning features added to every
gate (``layers``), then two masked 1x1 layers giving ``bins``-way logits for Cr and for Cb.
Trained with teacher forcing (``forward``); drawn from with cached activations (``sample``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vidcolor.models.pixcolor.chroma import CB, CR, network_input
from vidcolor.models.pixcolor.layers import GatedBlock, MaskedConv2d, pad_horizontal, pad_vertical
from vidcolor.models.pixcolor.sampling import CachedSampler, pick_bins


class PixelCNN(nn.Module):
    """The conditional PixelCNN over the chroma image (table 2: a 7x7 masked convolution,
    gated blocks of 5x5, masked 1x1 layers to ``2 * bins`` logits)."""

    def __init__(self, channels: int, blocks: int, kernel: int, first_kernel: int, head: int, bins: int,
                 features: int):
        super().__init__()
        self.bins = bins
        self.first_half = first_kernel // 2
        self.input_vertical = nn.Conv2d(2, channels, (self.first_half + 1, first_kernel))
        self.input_horizontal = MaskedConv2d(2, channels, (1, self.first_half + 1), own=False)
        self.blocks = nn.ModuleList(GatedBlock(channels, kernel, features) for _ in range(blocks))
        self.head = MaskedConv2d(channels, head, (1, 1), own=True)
        self.logits = MaskedConv2d(head, 2 * bins, (1, 1), own=True)

    def conditioning_terms(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Features ``(B, F, S, S)`` -> each block's gate term ``(B, 4C, S, S)``, computed once."""
        return [block.condition(features) for block in self.blocks]

    def forward(self, chroma: torch.Tensor, terms: list[torch.Tensor]) -> torch.Tensor:
        """Chroma ``(B, 2, S, S)`` (Cr, Cb) in [0, 1] -> logits ``(B, bins, 2, S, S)``:
        ``[:, :, CR, i, j]`` for Cr at pixel ``(i, j)`` given the earlier pixels,
        ``[:, :, CB, i, j]`` for Cb given those and the pixel's Cr."""
        x = network_input(chroma)
        v = self.input_vertical(pad_vertical(x, self.first_half))
        h = self.input_horizontal(pad_horizontal(x, self.first_half))
        for block, term in zip(self.blocks, terms):
            v, h = block(v, h, term)
        logits = self.logits(torch.relu(self.head(torch.relu(h))))
        b, _, s, t = logits.shape
        return logits.view(b, self.bins, 2, s, t)  # channel c of the logits is colour c % 2

    @torch.no_grad()
    def sample(self, terms: list[torch.Tensor], uniforms: torch.Tensor) -> torch.Tensor:
        """Draw chroma images, pixel by pixel and Cr before Cb, with cached activations.

        ``terms``: conditioning terms ``(N, 4C, S, S)`` (one per sample); ``uniforms``
        ``(N, S, S, 2)``: the numbers that pick each bin (``pick_bins``). Returns bin indices
        ``(N, 2, S, S)``, the same as drawing with the full network at every step."""
        sampler = CachedSampler(self, terms)
        size = terms[0].shape[-1]
        for i in range(size):
            for j in range(size):
                for channel in (CR, CB):
                    logits = sampler.logits_at(i, j)[:, :, channel]
                    sampler.set(i, j, channel, pick_bins(logits, uniforms[:, i, j, channel]))
            sampler.finish_row(i)
        return sampler.drawn
