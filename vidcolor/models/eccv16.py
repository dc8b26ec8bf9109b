"""Colorful Image Colorization (Zhang, Isola and Efros, ECCV 2016): ``--auto --model eccv16``.

A VGG-style network without pooling predicts, at a quarter of the input's resolution, a
distribution over the 313 quantised ab bins of every pixel (``vidcolor.ops.quantize``); the
colour is its annealed mean (T = 0.38 by default), brought to full size bilinearly. Blocks
1-7 are two or three 3x3 convolution-ReLU pairs and a BatchNorm (Caffe order), the
resolution halved by the stride of the last convolution of blocks 1-3, dilation 2 in
blocks 5 and 6; block 8 doubles the resolution by a deconvolution and ends with the 313
class logits. Layers and names follow the authors' released PyTorch model, so their
weights load as they are (``vidcolor.models.official``). Input: (L - 50) / 100.

Training: multinomial cross-entropy against the soft-encoded ground truth, with class
rebalancing (lambda 1/2) from the colour prior of the training pictures (``colour_prior``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.ops import quantize
from vidcolor.models.automatic import AutomaticNetwork, AutoOptions, register
from vidcolor.ops.color import pad_to

L_CENTRE, L_NORM, AB_NORM = 50.0, 100.0, 110.0


def conv_block(cin: int, cout: int, convs: int, stride: int = 1, dilation: int = 1, first_stride: bool = False,
               norm: bool = True) -> nn.Sequential:
    """``convs`` 3x3 convolution-ReLU pairs, then BatchNorm: the blocks of both of Zhang et
    al.'s networks. The stride applies to the last convolution (or the first with
    ``first_stride``)."""
    layers: list[nn.Module] = []
    for i in range(convs):
        s = stride if (i == 0 if first_stride else i == convs - 1) else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=s, padding=dilation, dilation=dilation), nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


def normalise_l(lightness: torch.Tensor) -> torch.Tensor:
    return (lightness - L_CENTRE) / L_NORM


def colour_prior(clips, samples: int = 4096) -> torch.Tensor:
    """The colour prior over the 313 bins of the training pictures (``samples`` pixels of each)."""
    from vidcolor.ops import color

    g = torch.Generator().manual_seed(0)
    picked = []
    for clip in clips:
        for frame in clip.frames:
            ab = color.rgb_to_lab(frame[None])[:, 1:].flatten(2)
            picked.append(ab[:, :, torch.randint(0, ab.shape[-1], (min(samples, ab.shape[-1]),), generator=g)])
    return quantize.empirical_prior(x[..., None] for x in picked)


@register("eccv16")
class ECCV16(AutomaticNetwork):
    """The colorization network of Zhang et al. 2016 (figure 2)."""

    OPTIONS = ("decode", "temperature")
    RANK = 3  # BENCHMARKS.md, 7

    @dataclass(frozen=True)
    class Config:
        width: int = 64  # channels of block 1 (the paper's 64; blocks 2-4 double it up to 8x)
        logit_scale: float = 1.0  # raw logits = output x this (the authors' release: 0.38)
        temperature: float = quantize.TEMPERATURE  # annealed mean's T, tuned per weights (train/tune_decoding.py)

    def __init__(self, config: "ECCV16.Config" = Config()):
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = (config.width * m for m in (1, 2, 4, 8))
        self.model1 = conv_block(1, c1, 2, stride=2)
        self.model2 = conv_block(c1, c2, 2, stride=2)
        self.model3 = conv_block(c2, c3, 3, stride=2)
        self.model4 = conv_block(c3, c4, 3)
        self.model5 = conv_block(c4, c4, 3, dilation=2)
        self.model6 = conv_block(c4, c4, 3, dilation=2)
        self.model7 = conv_block(c4, c4, 3)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(c4, c3, 4, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(c3, len(quantize.ab_bins()), 1),
        )
        # The expectation over the bins as a fixed 1x1 convolution (bin centres / 110), as
        # in the authors' model: decoding reads the centres from here.
        self.model_out = nn.Conv2d(len(quantize.ab_bins()), 2, 1, bias=False)
        with torch.no_grad():
            self.model_out.weight.copy_((quantize.ab_bins() / AB_NORM).T[:, :, None, None])
        self.model_out.weight.requires_grad_(False)

    def logits(self, lightness: torch.Tensor) -> torch.Tensor:
        """L ``(B, 1, H, W)``, H and W multiples of 8 -> raw class logits ``(B, 313, H/4, W/4)``."""
        x = normalise_l(lightness)
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7, self.model8):
            x = block(x)
        return x * self.config.logit_scale

    def bin_centres(self) -> torch.Tensor:
        """``(313, 2)`` ab of the bins, as the model's expectation layer holds them."""
        return self.model_out.weight[:, :, 0, 0].T * AB_NORM

    def distribution(self, lightness: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(lightness).float(), dim=1)

    def colorize(self, lightness: torch.Tensor, options: AutoOptions = AutoOptions()) -> torch.Tensor:
        padded, (h, w) = pad_to(lightness, 8)
        probs = self.distribution(padded)
        temperature = self.config.temperature if options.temperature is None else options.temperature
        ab = quantize.decode(probs, options.decode, temperature, self.bin_centres().float())
        ab = F.interpolate(ab, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return ab[..., :h, :w]

    @staticmethod
    def training_prior(clips) -> torch.Tensor:
        return colour_prior(clips)

    @staticmethod
    def prior_weights(prior: torch.Tensor) -> torch.Tensor:
        """Class rebalancing weights (equation 4, lambda 1/2) from the colour prior."""
        return quantize.rebalancing_weights(prior)

    def training_losses(self, rgb: torch.Tensor, weights: torch.Tensor | None = None,
                        generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Multinomial cross-entropy against the soft-encoded ground truth (equation 2), each
        pixel weighted by the rebalancing weight of its nearest bin (``weights``, Q values;
        uniform when None). Targets: the ab of every fourth pixel, as in the authors' recipe.
        The loss draws no random numbers; ``generator`` is taken so that every network is
        called alike by the training loop."""
        from vidcolor.ops import color

        lab = color.rgb_to_lab(rgb)
        padded, _ = pad_to(lab, 8)
        logits = self.logits(padded[:, :1])
        target_ab = padded[:, 1:, ::4, ::4][..., : logits.shape[-2], : logits.shape[-1]]
        z = quantize.soft_encode(target_ab.float())
        ce = -(z * torch.log_softmax(logits.float(), dim=1)).sum(1)  # (B, h, w)
        if weights is not None:
            ce = ce * quantize.pixel_weights(target_ab.float(), weights)
        return {"loss": ce.mean()}
