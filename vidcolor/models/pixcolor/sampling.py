"""Drawing from PixColor's PixelCNN: the uniforms that pick each bin (one block per sample,
so sample ``k`` is the same whatever the number drawn), the pick itself, and the cache of
activations that makes each step cheap (Ramachandran et al. 2017, "Fast generation for
convolutional autoregressive models", the paper's reference [27]): each step computes only
the current pixel of the horizontal stacks, and the vertical stacks advance one row at a
time once the row is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from vidcolor.models.pixcolor.chroma import bin_centres, network_input
from vidcolor.models.pixcolor.layers import gate

if TYPE_CHECKING:
    from vidcolor.models.pixcolor.pixelcnn import PixelCNN


def sampling_uniforms(seed: int, count: int, shape: tuple[int, ...]) -> torch.Tensor:
    """``(count, *shape)`` uniforms in [0, 1), one block per sample drawn in turn from one
    generator seeded with ``seed``: sample ``k`` gets the same numbers whatever ``count``."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.stack([torch.rand(shape, generator=generator) for _ in range(count)])


def pick_bins(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """A draw from the multinomial of ``logits`` ``(N, bins)`` by inverting its cumulative
    distribution at ``uniforms`` ``(N,)`` -> bin indices ``(N,)``."""
    cdf = torch.softmax(logits, -1).cumsum(-1)
    return (cdf < uniforms[:, None]).sum(-1).clamp(max=logits.shape[-1] - 1)


class CachedSampler:
    """The activations of a ``PixelCNN`` while it draws (``PixelCNN.sample``): the input
    chroma, every vertical stack (all rows so far) and every horizontal stack (the current
    row), padded as the convolutions pad them, and the weights flattened for single-pixel
    matrix products. Per row ``i``: ``logits_at(i, j)`` and ``set(i, j, channel, index)``
    for each pixel ``j`` and channel (Cr, then Cb), then ``finish_row(i)``."""

    def __init__(self, net: PixelCNN, terms: list[torch.Tensor]):
        n, _, size, _ = terms[0].shape
        like = terms[0]
        self.net, self.size, self.n = net, size, n
        self.p0 = net.first_half
        self.p = net.blocks[0].half
        c = net.input_vertical.out_channels
        self.drawn = torch.zeros(n, 2, size, size, dtype=torch.long, device=like.device)  # bin indices
        self.x = like.new_zeros(n, 2, self.p0 + size, size + 2 * self.p0)  # network input, padded
        self.v = [like.new_zeros(n, c, self.p + size, size + 2 * self.p) for _ in net.blocks]
        self.h = [like.new_zeros(n, c, self.p + size) for _ in net.blocks]
        self.vertical_terms = [term.chunk(2, 1)[0] for term in terms]
        self.horizontal_terms = [term.chunk(2, 1)[1] for term in terms]
        self.row_terms: list[torch.Tensor] = []
        self.above = [like.new_zeros(n, 2 * c, size) for _ in net.blocks]  # v_pre of the row above
        self.input_weight = net.input_horizontal.masked_weight().flatten(1)
        self.horizontal_weights = [block.horizontal.masked_weight().flatten(1) for block in net.blocks]
        self.residual_weights = [block.residual.masked_weight().flatten(1) for block in net.blocks]
        self.head_weight = net.head.masked_weight().flatten(1)
        self.logits_weight = net.logits.masked_weight().flatten(1)
        self.start_row(0)

    def start_row(self, i: int) -> None:
        """What every pixel of row ``i`` adds to its horizontal gates: the vertical stack
        from the row above through the link, the conditioning term and the bias."""
        self.row_terms = []
        for b, block in enumerate(self.net.blocks):
            link = F.conv2d(self.above[b][:, :, None], block.link.weight, block.link.bias)[:, :, 0]
            term = link + self.horizontal_terms[b][:, :, i] + block.horizontal.bias[:, None]
            self.row_terms.append(term.transpose(1, 2).contiguous())  # (N, S, 2C)

    def logits_at(self, i: int, j: int) -> torch.Tensor:
        """Logits ``(N, bins, 2)`` at pixel ``(i, j)``, updating the horizontal stacks there."""
        net, p, p0 = self.net, self.p, self.p0
        window = self.x[:, :, p0 + i, j:j + p0 + 1].reshape(self.n, -1)
        h = F.linear(window, self.input_weight, net.input_horizontal.bias)
        for b, block in enumerate(net.blocks):
            self.h[b][:, :, p + j] = h
            window = self.h[b][:, :, j:j + p + 1].reshape(self.n, -1)
            pre = F.linear(window, self.horizontal_weights[b]) + self.row_terms[b][:, j]
            h = h + F.linear(gate(pre), self.residual_weights[b], block.residual.bias)
        hidden = torch.relu(F.linear(torch.relu(h), self.head_weight, net.head.bias))
        return F.linear(hidden, self.logits_weight, net.logits.bias).view(self.n, net.bins, 2)

    def set(self, i: int, j: int, channel: int, index: torch.Tensor) -> None:
        """Record the drawn bin of one colour channel at pixel ``(i, j)``."""
        self.drawn[:, channel, i, j] = index
        value = network_input(bin_centres(index, self.net.bins)).to(self.x.dtype)
        self.x[:, channel, self.p0 + i, self.p0 + j] = value

    def finish_row(self, i: int) -> None:
        """Advance every vertical stack by row ``i`` (now drawn) and prepare row ``i + 1``."""
        net, p, size = self.net, self.p, self.size
        v = F.conv2d(self.x[:, :, i:i + self.p0 + 1], net.input_vertical.weight, net.input_vertical.bias)
        for b, block in enumerate(net.blocks):
            self.v[b][:, :, p + i, p:p + size] = v[:, :, 0]
            v_pre = F.conv2d(self.v[b][:, :, i:i + p + 1], block.vertical.weight, block.vertical.bias)
            self.above[b] = v_pre[:, :, 0]
            v = gate(v_pre + self.vertical_terms[b][:, :, i:i + 1])
        if i + 1 < size:
            self.start_row(i + 1)
