"""The PixColor model (Guadarrama et al. 2017, figure 4): the conditioning network, the
conditional PixelCNN over the low-resolution chroma and the refinement network, registered
as ``pixcolor``.

Colorizing draws ``size x size`` chroma images from the PixelCNN, with the features
computed once per picture for every sample and all samples drawn as one batch; the
refinement network predicts the chroma at a working resolution (short side
``refine_size``), which is upsampled bilinearly to full size and combined with the grey's
luminance Y into sRGB, and ab is taken from its Lab conversion. The low-resolution grid is
square whatever the picture's aspect ratio.

Training (section 3.1, 3.2): cross-entropy of the PixelCNN with teacher forcing on the
quantised ground-truth low-resolution chroma, and L1 of the refinement network given the
ground-truth low-resolution chroma (as bin centres, what sampling hands it) - two separate
sets of weights, so their sum trains them independently, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidcolor.errors import InputError, ModelError
from vidcolor.models.automatic import AutomaticNetwork, AutoOptions, register
from vidcolor.models.pixcolor.chroma import bin_centres, chroma_to_ab, quantize, rgb_to_chroma
from vidcolor.models.pixcolor.conditioning import ConditioningNetwork
from vidcolor.models.pixcolor.pixelcnn import PixelCNN
from vidcolor.models.pixcolor.refinement import RefinementNetwork
from vidcolor.models.pixcolor.sampling import sampling_uniforms
from vidcolor.ops import color
from vidcolor.ops.color import lightness_to_grey as grey_level


@register("pixcolor")
class PixColor(AutomaticNetwork):
    """PixColor (Guadarrama et al. 2017, figure 4): conditioning network, conditional
    PixelCNN over the low-resolution chroma, refinement network."""

    OPTIONS = ("samples", "seed")
    RANK = 4  # BENCHMARKS.md, 7

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

    def training_losses(self, rgb: torch.Tensor, generator: torch.Generator | None = None,
                        weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """sRGB ``(B, 3, H, W)`` in [0, 1] -> ``pixelcnn`` (cross-entropy per colour value,
        teacher forcing on the quantised true ``size x size`` chroma), ``refinement`` (L1 of
        the chroma at the working resolution, given the true low-resolution chroma as bin
        centres) and their sum ``loss``. The losses draw no random numbers and there is no
        prior; ``generator`` and ``weights`` are taken so that every network is called alike
        by the training loop."""
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
