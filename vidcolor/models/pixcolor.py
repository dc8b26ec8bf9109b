"""PixColor: Pixel Recursive Colorization (Guadarrama, Dahl, Bieber, Norouzi, Shlens and
Murphy, BMVC 2017): ``--auto --model pixcolor``.

Colour is of much lower spatial frequency than luminance, so it suffices to draw a plausible
*low-resolution* colour image and let a feedforward CNN bring it to full size (section 3).
Three networks (figure 4, table 2):

* the **conditioning network** (with the *adaptation network*, its last three 3x3
  convolutions) turns the grey picture, resized to ``input_size`` square, into features on
  the ``size x size`` grid (a small ResNet of stride 8; the paper uses ResNet-101);
* the **conditional PixelCNN** models the ``size x size`` chroma image in YCbCr, Cr and Cb
  each quantised into ``bins`` bins, pixel by pixel in raster order and Cr before Cb::

      p(y | x) = prod_i p(y(i,r) | y(1:i-1,:), x) p(y(i,b) | y(i,r), y(1:i-1,:), x)

  It is a gated PixelCNN (van den Oord et al. 2016): a masked first layer (type A), gated
  blocks each with a vertical stack (the rows above) and a horizontal stack (the pixels to
  the left in the row), the features added to every gate, then two masked 1x1 layers giving
  ``bins``-way logits for Cr and for Cb. Channel ``c`` of every horizontal-stack layer
  belongs to colour channel ``c % 2`` (0: Cr, 1: Cb): at the current pixel a Cr channel
  sees no input, a Cb channel sees the pixel's Cr (type A), and later layers let a channel
  see its own group and the groups before it (type B), so no output depends on the current
  or later pixels, and the Cb logit of a pixel may depend on its Cr, never the reverse;
* the **refinement network** takes the grey picture at a working resolution (short side
  ``refine_size``) and the low-resolution chroma upsampled bilinearly, and predicts the
  full-resolution chroma (the paper's encoder widths, bilinear upsampling in the decoder;
  its last 1x1 layer starts at zero and its output is added to the upsampled chroma, so an
  untrained network begins at plain bilinear upsampling, the paper's "unrefined" baseline).
  The chroma is combined with the grey's luminance Y into sRGB, and ab is taken from its
  Lab conversion.

Training (section 3.1, 3.2): cross-entropy of the PixelCNN with teacher forcing on the
quantised ground-truth low-resolution chroma, and L1 of the refinement network given the
ground-truth low-resolution chroma (as bin centres, what sampling hands it) - two separate
sets of weights, so their sum trains them independently, as in the paper.

Sampling caches what does not change: the features once per picture for every sample, all
samples drawn as one batch, and the activations of every layer (Ramachandran et al. 2017,
"Fast generation for convolutional autoregressive models", the paper's reference [27]):
each step computes only the current pixel of the horizontal stacks, and the vertical
stacks advance one row at a time once the row is drawn.

Colour: kornia's YCbCr (Y, Cb, Cr in [0, 1], chroma offset by 0.5); chroma tensors here are
ordered (Cr, Cb). The low-resolution grid is square whatever the picture's aspect ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import kornia
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.ops import color
from vidcolor.ops.color import lightness_to_grey as grey_level
from vidcolor.models.automatic import AutoOptions, register
from vidcolor.errors import InputError, ModelError

CR, CB = 0, 1  # the colour channels of the chroma image, in the order they are drawn


# -- colour ---------------------------------------------------------------------------------


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


# -- sampling helpers -----------------------------------------------------------------------


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


# -- PixelCNN layers --------------------------------------------------------------------------


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


# -- conditioning and refinement networks ---------------------------------------------------------


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


# -- the model ---------------------------------------------------------------------------------------


@register("pixcolor")
class PixColor(nn.Module):
    """PixColor (Guadarrama et al. 2017, figure 4): conditioning network, conditional
    PixelCNN over the low-resolution chroma, refinement network."""

    @dataclass(frozen=True)
    class Config:
        input_size: int = 224  # side of the square grey picture the conditioning network sees (the paper's 224)
        size: int = 28  # side of the low-resolution chroma grid (the paper's 28)
        bins: int = 32  # quantisation bins of each of Cb and Cr (the paper's 32)
        condition_width: int = 32  # first-stage channels of the conditioning network (ResNet-101 in the paper: 64)
        condition_blocks: int = 4  # residual blocks at stride 8 (the paper's 23 bottleneck blocks)
        features: int = 64  # adaptation network output channels (the paper's 64)
        pixel_channels: int = 64  # PixelCNN channels, even (the paper's 64)
        pixel_blocks: int = 6  # gated blocks (the paper's 10)
        pixel_kernel: int = 5  # gated block kernel, odd (the paper's 5)
        first_kernel: int = 7  # first masked convolution's kernel, odd (the paper's 7)
        head_channels: int = 256  # the masked 1x1 layer before the logits, even (the paper's 1024)
        refine_width: int = 32  # refinement network base width, even (the paper's 64)
        refine_size: int = 224  # short side of the refinement network's working resolution

    def __init__(self, config: "PixColor.Config" = Config()):
        super().__init__()
        check_config(config)
        self.config = config
        self.conditioning = ConditioningNetwork(config.condition_width, config.condition_blocks, config.features,
                                                config.input_size, config.size)
        self.pixelcnn = PixelCNN(config.pixel_channels, config.pixel_blocks, config.pixel_kernel, config.first_kernel,
                                 config.head_channels, config.bins, config.features)
        self.refinement = RefinementNetwork(config.refine_width)

    # -- use ------------------------------------------------------------------------------------

    def refine(self, grey: torch.Tensor, low_chroma: torch.Tensor) -> torch.Tensor:
        """Grey ``(B, 1, H, W)`` in [0, 1] and low-resolution chroma ``(B, 2, S, S)`` -> ab
        ``(B, 2, H, W)`` in Lab units: the refinement network at the working resolution,
        its chroma upsampled bilinearly to full size and combined with the grey's luma."""
        full = tuple(grey.shape[-2:])
        work = color.work_size(full[0], full[1], self.config.refine_size)
        chroma = self.refinement(color.resize(grey, work), low_chroma)
        return chroma_to_ab(grey, color.resize(chroma, full))

    @torch.no_grad()
    def sample_bins(self, lightness: torch.Tensor, seed: int, count: int) -> torch.Tensor:
        """``count`` low-resolution chroma images per picture, drawn as one batch from
        features computed once: L ``(B, 1, H, W)`` -> bin indices ``(count, B, 2, S, S)``."""
        batch, size = lightness.shape[0], self.config.size
        features = self.conditioning(grey_level(lightness))
        terms = [term.repeat(count, 1, 1, 1) for term in self.pixelcnn.conditioning_terms(features)]
        uniforms = sampling_uniforms(seed, count, (batch, size, size, 2)).flatten(0, 1)
        bins = self.pixelcnn.sample(terms, uniforms.to(features.device, features.dtype))
        return bins.view(count, batch, 2, size, size)

    @torch.no_grad()
    def colorize_samples(self, lightness: torch.Tensor, options: AutoOptions = AutoOptions(),
                         count: int = 3) -> torch.Tensor:
        """``count`` colorizations: L ``(B, 1, H, W)`` in [0, 100] -> ab ``(count, B, 2, H,
        W)`` in Lab units. Deterministic for ``options.seed``; sample ``k`` does not depend
        on ``count``."""
        check_input(lightness, count)
        lightness = lightness.to(next(self.parameters()).dtype)
        bins = self.sample_bins(lightness, options.seed, count)
        low = bin_centres(bins.flatten(0, 1), self.config.bins).to(lightness.dtype)
        grey = grey_level(lightness).repeat(count, 1, 1, 1)
        ab = self.refine(grey, low)
        return ab.view(count, *lightness.shape[:1], 2, *lightness.shape[-2:])

    def colorize(self, lightness: torch.Tensor, options: AutoOptions = AutoOptions()) -> torch.Tensor:
        """The first sample of ``colorize_samples`` for ``options.seed``: ab ``(B, 2, H, W)``."""
        return self.colorize_samples(lightness, options, 1)[0]

    # -- training ---------------------------------------------------------------------------------

    def training_losses(self, rgb: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """sRGB ``(B, 3, H, W)`` in [0, 1] -> ``pixelcnn`` (cross-entropy per colour value,
        teacher forcing on the quantised true ``size x size`` chroma), ``refinement`` (L1 of
        the chroma at the working resolution, given the true low-resolution chroma as bin
        centres) and their sum ``loss``. The losses draw no random numbers; ``generator`` is
        taken so that every network is called alike by the training loop."""
        size, bins = self.config.size, self.config.bins
        grey = grey_level(color.rgb_to_lab(rgb)[:, :1])
        chroma = rgb_to_chroma(rgb)
        target = quantize(color.resize(chroma, (size, size)), bins)
        low = bin_centres(target, bins).to(rgb.dtype)
        terms = self.pixelcnn.conditioning_terms(self.conditioning(grey))
        pixel_loss = F.cross_entropy(self.pixelcnn(low, terms), target)
        work = color.work_size(rgb.shape[-2], rgb.shape[-1], self.config.refine_size)
        refined = self.refinement(color.resize(grey, work), low)
        refine_loss = (refined - color.resize(chroma, work)).abs().mean()
        return {"loss": pixel_loss + refine_loss, "pixelcnn": pixel_loss, "refinement": refine_loss}


def check_config(config: PixColor.Config) -> None:
    """Settings the layers need: even channel counts (two colour groups), odd kernels."""
    for name in ("pixel_channels", "head_channels", "refine_width"):
        value = getattr(config, name)
        if value < 2 or value % 2:
            raise ModelError(f"pixcolor setting {name} must be an even number of at least 2, not {value}")
    for name in ("pixel_kernel", "first_kernel"):
        value = getattr(config, name)
        if value < 1 or value % 2 == 0:
            raise ModelError(f"pixcolor setting {name} must be an odd number, not {value}")
    for name in ("input_size", "size", "bins", "pixel_blocks", "condition_width", "features"):
        if getattr(config, name) < 1:
            raise ModelError(f"pixcolor setting {name} must be at least 1, not {getattr(config, name)}")


def check_input(lightness: torch.Tensor, count: int) -> None:
    if lightness.dim() != 4 or lightness.shape[1] != 1:
        raise InputError(f"pixcolor needs lightness shaped (B, 1, H, W), not {tuple(lightness.shape)}")
    if count < 1:
        raise InputError(f"pixcolor needs a sample count of at least 1, not {count}")
