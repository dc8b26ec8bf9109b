"""DDColor (Kang et al., "DDColor: Towards Photo-Realistic Image Colorization via Dual
Decoders", ICCV 2023) as an automatic network: ``--auto --model ddcolor``.

A ConvNeXt encoder (``encoder``) reads the grey picture; the dual decoder (``decoder``)
gives ``num_queries`` maps at full resolution; a spectrally normalised 1x1 convolution
(``refine_net``) on those maps and the normalised input gives ab directly, in Lab units.
Variants, as released: the tiny or large encoder, with the multi-scale colour decoder (100
queries); the single-scale decoder of the paper's ablation (256 queries) also loads. The
weights are the authors' (``vidcolor weights import ddcolor FILE``); vidcolor does not train
this network.

The authors' inference recipe, step by step: the picture's grey (its L with zero ab, as
sRGB) is resized to ``input_size`` x ``input_size`` (512; bilinear, no anti-aliasing),
given as RGB normalised by the ImageNet mean and deviation (buffers ``mean`` and ``std``),
and the predicted ab is resized back to the picture's size by nearest neighbours and joined
with its own L. Here the picture is the frame at work resolution (``--work-res``); the
pipeline joins ab with the full-size L (and its guided upsampling is the identity when the
work resolution is the picture's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.models.automatic import AutomaticNetwork, AutoOptions, register
from vidcolor.models.ddcolor.decoder import Decoder, SpectralConv2d
from vidcolor.models.ddcolor.encoder import VARIANTS, Encoder
from vidcolor.ops import color

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@register("ddcolor")
class DDColor(AutomaticNetwork):
    """ConvNeXt encoder + pixel decoder + colour decoder with learnable queries."""

    TRAINABLE = False

    @dataclass
    class Config:
        encoder: str = "tiny"  # tiny (ConvNeXt-T) or large (ConvNeXt-L)
        decoder: str = "multi"  # multi (multi-scale, the released) or single (the ablation)
        num_queries: int = 100
        input_size: int = 512  # the authors' working size, a multiple of 32

    def __init__(self, config: "DDColor.Config" = None):
        super().__init__()
        self.config = config = config or DDColor.Config()
        from vidcolor.errors import ModelError

        if config.encoder not in VARIANTS or config.decoder not in ("multi", "single") or config.input_size % 32:
            raise ModelError(f"unknown DDColor variant {config.encoder}/{config.decoder} at {config.input_size}")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.encoder = Encoder(config.encoder)
        self.decoder = Decoder(VARIANTS[config.encoder][1], config.decoder == "single", config.num_queries)
        self.refine_net = nn.Sequential(nn.Sequential(SpectralConv2d(config.num_queries + 3, 2, 1, bias=True)))

    def forward(self, grey_rgb: torch.Tensor) -> torch.Tensor:
        """Grey pictures as RGB ``(B, 3, S, S)`` in [0, 1] (S a multiple of 32) -> ab ``(B, 2, S, S)``."""
        x = (grey_rgb - self.mean) / self.std
        maps = self.decoder(self.encoder(x))
        return self.refine_net(torch.cat((maps, x), 1))

    def colorize(self, lightness: torch.Tensor, options: AutoOptions = AutoOptions()) -> torch.Tensor:
        """One picture at a time: the full-resolution maps of 100 queries and 256 pixel
        features take about 1 GB per picture at 512 x 512."""
        size = self.config.input_size
        out = []
        for frame in lightness:
            grey = color.lightness_to_grey(frame[None].float())
            grey = F.interpolate(grey, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
            ab = self.forward(grey.expand(-1, 3, -1, -1).to(self.mean.dtype))
            out.append(F.interpolate(ab.float(), size=lightness.shape[-2:], mode="nearest"))
        return torch.cat(out)
