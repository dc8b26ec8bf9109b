"""Learning Representations for Automatic Colorization (Larsson, Maire and Shakhnarovich,
ECCV 2016): ``--auto --model larsson``.

A VGG-16 trunk (conv1_1 ... conv5_3, fc6 as a 7x7 convolution and fc7 as a 1x1 convolution)
reads the grey image. A *hypercolumn* gathers, at every position of a grid at a quarter of
the input resolution, the bilinearly interpolated features of every layer from the data to
fc7 (section 3.5); the fully connected layer h_fc1 (a 1x1 convolution) and a ReLU turn it into
a hidden descriptor from which two 1x1 layers predict a histogram of K = 32 uniform bins over
hue and one over chroma (section 3.2). The histograms are brought to full size bilinearly.

Decoding (section 3.3): the chroma is the median of its histogram, the hue the argument of
the complex expectation z of its histogram (equation 4), and *chromatic fading* multiplies
the chroma by min(|z|, eta) / eta. Hue and chroma become colour through the bicone: HSV with
V = L + C / 2 and S = C / V, L being the grey level, after which the RGB is shifted so that
its mean is the grey level again (appendix A.4).

With a global hint (``AutoOptions.global_hint``, a reference image) the predicted histograms
are re-weighted by the energy minimisation of section 3.4 (equation 5) so that their mean
moves towards the reference's hue and chroma histograms.

Conventions: the network reads CIE L / 100 (in [0, 1]). Hue and chroma are in [0, 1]: hue is
the HSV hue divided by 2 pi, chroma is S * V = max(R, G, B) - min(R, G, B) of sRGB in [0, 1].
The grey level that reconstruction uses is the sRGB grey with the input's CIE L.

Departures from the paper, for a network trained from scratch on our data rather than
fine-tuned from ImageNet VGG-16: every trunk convolution is followed by BatchNorm (this takes
the place of the paper's hypercolumn balancing to unit second moment, appendix A.1), and the
widths are configurable (``width=64, fc=4096, hidden=1024`` is the paper's network, whose
hypercolumn has 12,417 channels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import kornia
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.ops import color
from vidcolor.ops.color import lightness_to_grey, pad_to
from vidcolor.models.automatic import AutomaticNetwork, AutoOptions, register

HUE_WEIGHT = 5.0  # lambda_H of equation (3): hue loss weighted by 5 x chroma
SAMPLES = 128  # hypercolumns sampled per training image (section 3.5)
TRANSFER_STRENGTH = 10.0  # lambda of equation (5)
TRANSFER_STEPS = 200
TRANSFER_RATE = 0.1
EPS = 1e-8

# VGG-16 "D": convolutions per stage, as multiples of the base width; 2x2 max-pools between.
VGG16_STAGES = ((1, 1), (2, 2), (4, 4, 4), (8, 8, 8), (8, 8, 8))


# -- hue and chroma ------------------------------------------------------------------------


def hue_chroma(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB ``(B, 3, H, W)`` in [0, 1] -> hue and chroma ``(B, 1, H, W)``, both in [0, 1].

    Hue is the HSV hue as a fraction of a turn, in [0, 1) (0 for grey pixels); chroma is
    C = S * V = max - min, the radial coordinate of the hue/chroma bicone (section 3.1)."""
    hsv = kornia.color.rgb_to_hsv(rgb.clamp(0.0, 1.0))
    hue = (hsv[:, :1] / (2 * math.pi)).remainder(1.0)
    chroma = rgb.clamp(0.0, 1.0).amax(1, keepdim=True) - rgb.clamp(0.0, 1.0).amin(1, keepdim=True)
    return hue, chroma


def bin_centres(bins: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Centres ``(k + 0.5) / K`` of K uniform bins over [0, 1]."""
    return (torch.arange(bins, device=device, dtype=torch.float32) + 0.5) / bins


def hue_bins(hue: torch.Tensor, bins: int) -> torch.Tensor:
    """Hue in [0, 1) -> index of its uniform bin (hue is circular: 1.0 wraps to bin 0)."""
    return torch.floor(hue * bins).long().remainder(bins)


def chroma_bins(chroma: torch.Tensor, bins: int) -> torch.Tensor:
    """Chroma in [0, 1] -> index of its uniform bin (1.0 falls in the last bin)."""
    return torch.floor(chroma * bins).long().clamp(0, bins - 1)


def histogram(index: torch.Tensor, bins: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Bin indices ``(B, 1, H, W)`` -> normalised histograms ``(B, K)``, each pixel counted
    with its weight (1 when None). A histogram with no weight at all is all zeros."""
    flat = index.flatten(1)
    w = torch.ones_like(flat, dtype=torch.float32) if weights is None else weights.flatten(1).float()
    counts = torch.zeros(flat.shape[0], bins, device=flat.device).scatter_add_(1, flat, w)
    return counts / counts.sum(1, keepdim=True).clamp_min(EPS)


def reference_histograms(rgb: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The target histograms t of equation (5) from a reference sRGB image ``(B, 3, H, W)``:
    hue ``(B, K)``, each pixel weighted by its chroma (grey pixels have no hue), and chroma
    ``(B, K)``."""
    hue, chroma = hue_chroma(rgb)
    return histogram(hue_bins(hue, bins), bins, chroma), histogram(chroma_bins(chroma, bins), bins)


# -- decoding (section 3.3) ----------------------------------------------------------------


def chroma_median(probs: torch.Tensor) -> torch.Tensor:
    """Median of chroma histograms ``(B, K, H, W)`` -> chroma ``(B, 1, H, W)`` in [0, 1].

    The cumulative sum of the histogram, linearly interpolated inside the bin where it
    crosses one half (each bin's mass spread uniformly over its width)."""
    bins = probs.shape[1]
    cdf = probs.cumsum(1)
    k = (cdf < 0.5).sum(1, keepdim=True).clamp(max=bins - 1)
    mass = probs.gather(1, k)
    below = cdf.gather(1, k) - mass
    within = ((0.5 - below) / mass.clamp_min(EPS)).clamp(0.0, 1.0)
    return (k + within) / bins


def hue_expectation(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Circular expectation of hue histograms ``(B, K, H, W)`` (equation 4).

    ``z = 1/K sum_k p_k exp(i theta_k)`` with ``theta_k = 2 pi (k + 0.5) / K``; returns the
    hue ``arg(z)`` remapped to [0, 1) and the magnitude |z| (both ``(B, 1, H, W)``). |z| is
    1/K for a histogram with all its mass in one bin and 0 for a uniform one."""
    bins = probs.shape[1]
    theta = (2 * math.pi * bin_centres(bins, probs.device)).view(1, bins, 1, 1)
    real = (probs * torch.cos(theta)).sum(1, keepdim=True) / bins
    imag = (probs * torch.sin(theta)).sum(1, keepdim=True) / bins
    hue = (torch.atan2(imag, real) / (2 * math.pi)).remainder(1.0)
    return hue, torch.hypot(real, imag)


def chromatic_fading(chroma: torch.Tensor, magnitude: torch.Tensor, eta: float = 0.03) -> torch.Tensor:
    """Chromatic fading (section 3.3): chroma x min(|z|, eta) / eta, so pixels whose hue
    histogram is too spread out to give a stable hue lose their colour. eta = 0.03 was
    cross-validated for K = 32 bins (|z| of a single-bin histogram is 1/32)."""
    return chroma * magnitude.clamp(max=eta) / eta


def reconstruct_rgb(lightness: torch.Tensor, hue: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """CIE L ``(B, 1, H, W)``, hue and chroma in [0, 1] -> sRGB ``(B, 3, H, W)`` in [0, 1].

    Through the bicone (section 3.1): with L the grey level, V = L + C / 2 and S = C / V,
    both clipped to [0, 1]. The RGB of that HSV (max V, min V - C, so its chroma is C) is
    then shifted so that its channel mean is the grey level again (appendix A.4); values
    that leave [0, 1] after the shift are clipped."""
    grey = lightness_to_grey(lightness)
    value = grey + chroma / 2
    saturation = chroma / value.clamp_min(EPS)
    hsv = torch.cat((hue * (2 * math.pi), saturation.clamp(0.0, 1.0), value.clamp(0.0, 1.0)), 1)
    rgb = kornia.color.hsv_to_rgb(hsv)
    rgb = rgb + (grey - rgb.mean(1, keepdim=True))
    return rgb.clamp(0.0, 1.0)


# -- histogram transfer (section 3.4) --------------------------------------------------------


def mean_histogram(probs: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The source histogram <y> of equation (5): the mean over pixels of histograms
    ``(B, K, H, W)`` -> ``(B, K)``, each pixel weighted by ``weights`` ``(B, 1, H, W)`` when
    given."""
    if weights is None:
        return probs.mean((2, 3))
    return (probs * weights).sum((2, 3)) / weights.sum((2, 3)).clamp_min(EPS)


def chi_square(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Symmetric chi-squared distance ``sum_k (p_k - q_k)^2 / (p_k + q_k)`` over the last dim."""
    return ((p - q) ** 2 / (p + q).clamp_min(EPS)).sum(-1)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``D_KL(p || q)`` over dim 1 (histograms ``(B, K, ...)``)."""
    return (p * (torch.log(p.clamp_min(EPS)) - torch.log(q.clamp_min(EPS)))).sum(1)


def apply_bias(log_probs: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The posterior of section 3.4: ``softmax(log y_n + b)`` for every pixel, ``b`` ``(B, K)``
    a global bias per bin (equivalently, a per-bin factor exp(b))."""
    return torch.softmax(log_probs + bias[:, :, None, None], dim=1)


def transfer_energy(log_probs: torch.Tensor, bias: torch.Tensor, target: torch.Tensor,
                    weights: torch.Tensor | None = None, strength: float = TRANSFER_STRENGTH) -> torch.Tensor:
    """Equation (5) per image ``(B,)``: ``1/N sum_n D_KL(y*_n || y_n) + lambda chi2(<y*>, t)``
    with ``y*_n = softmax(log y_n + b)``; the first term anchors the posteriors to the
    predictions, the second pulls their mean towards the target histogram ``t`` ``(B, K)``."""
    posterior = apply_bias(log_probs, bias)
    unary = kl_divergence(posterior, log_probs.exp()).mean((1, 2))
    return unary + strength * chi_square(mean_histogram(posterior, weights), target)


def histogram_transfer(probs: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                       strength: float = TRANSFER_STRENGTH, steps: int = TRANSFER_STEPS,
                       rate: float = TRANSFER_RATE) -> torch.Tensor:
    """Solve equation (5) for the bias ``b`` ``(B, K)`` by gradient descent (Adam, ``steps``
    steps of size ``rate``), starting from b = 0. ``probs`` ``(B, K, H, W)`` are the
    predicted histograms, ``target`` ``(B, K)`` or ``(1, K)`` the reference histograms,
    ``weights`` optional pixel weights of the source mean. Returns the bias; the adjusted
    histograms are ``apply_bias(log(probs), b)``."""
    with torch.inference_mode(False), torch.enable_grad():
        log_probs = torch.log(probs.detach().float().clone().clamp_min(EPS))
        target = target.detach().float().clone().expand(probs.shape[0], -1)
        weights = None if weights is None else weights.detach().float().clone()
        bias = torch.zeros(probs.shape[:2], device=probs.device, requires_grad=True)
        optimiser = torch.optim.Adam([bias], lr=rate)
        for _ in range(steps):
            optimiser.zero_grad()
            transfer_energy(log_probs, bias, target, weights, strength).sum().backward()
            optimiser.step()
    return bias.detach()


# -- the network ---------------------------------------------------------------------------


def cell_grid(height: int, width: int, stride: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Sampling grid ``(1, H/stride, W/stride, 2)`` at the centres of ``stride`` x ``stride``
    cells, in ``grid_sample``'s normalised coordinates (x first, align_corners=False)."""
    ys = (torch.arange(height // stride, device=device) + 0.5) * (2 * stride / height) - 1
    xs = (torch.arange(width // stride, device=device) + 0.5) * (2 * stride / width) - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), -1)[None]


def pixel_grid(ys: torch.Tensor, xs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel rows and columns ``(B, N)`` -> sampling grid ``(B, 1, N, 2)`` at their centres."""
    gx = (xs.float() + 0.5) * (2 / width) - 1
    gy = (ys.float() + 0.5) * (2 / height) - 1
    return torch.stack((gx, gy), -1)[:, None]


def _sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of ``x`` at the grid's positions (borders clamped)."""
    return F.grid_sample(x, grid.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="border",
                         align_corners=False)


class _Conv(nn.Sequential):
    """3x3 convolution, BatchNorm, ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@register("larsson")
class LarssonNet(AutomaticNetwork):
    """Hypercolumn hue/chroma histogram predictor of Larsson et al. 2016 (figure 2)."""

    OPTIONS = ("global_hint",)
    RANK = 2  # BENCHMARKS.md, 7

    @dataclass(frozen=True)
    class Config:
        width: int = 32  # channels of conv1 (VGG-16: 64); conv2 x2, conv3 x4, conv4-5 x8
        fc: int = 256  # channels of fc6 and fc7 (VGG-16: 4096)
        hidden: int = 256  # channels of h_fc1 (the paper: 1024)
        bins: int = 32  # K, bins of each of the hue and chroma histograms
        fade: float = 0.03  # eta of chromatic fading

    def __init__(self, config: "LarssonNet.Config" = Config()):
        super().__init__()
        self.config = config
        w = config.width
        self.stages = nn.ModuleList()
        cin = 1
        for stage in VGG16_STAGES:
            layers = []
            for m in stage:
                layers.append(_Conv(cin, m * w))
                cin = m * w
            self.stages.append(nn.Sequential(*layers))
        self.fc6 = nn.Conv2d(cin, config.fc, 7, padding=3)
        self.fc7 = nn.Conv2d(config.fc, config.fc, 1)
        # hypercolumn taps: data, every convolution of the trunk, fc6 and fc7
        self.taps = [1] + [m * w for stage in VGG16_STAGES for m in stage] + [config.fc, config.fc]
        self.h_fc1 = nn.Conv2d(sum(self.taps), config.hidden, 1)
        self.hue = nn.Conv2d(config.hidden, config.bins, 1)
        self.chroma = nn.Conv2d(config.hidden, config.bins, 1)
        for layer in (self.h_fc1, self.hue, self.chroma):  # Xavier, as the paper (section 4)
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def features(self, lightness: torch.Tensor) -> list[torch.Tensor]:
        """CIE L ``(B, 1, H, W)``, H and W multiples of 32 -> the hypercolumn layers: the data
        (L / 100), conv1_1 ... conv5_3 (after ReLU), fc6 and fc7 (after ReLU), at strides
        1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32."""
        x = lightness / color.L_SCALE
        out = [x]
        for i, stage in enumerate(self.stages):
            if i:
                x = F.max_pool2d(x, 2)
            for layer in stage:
                x = layer(x)
                out.append(x)
        x = torch.relu(self.fc6(F.max_pool2d(x, 2)))
        out.append(x)
        out.append(torch.relu(self.fc7(x)))
        return out

    def hypercolumn(self, features: list[torch.Tensor], grid: torch.Tensor) -> torch.Tensor:
        """h_fc1 applied to the hypercolumns at the grid's positions ``(1 or B, h, w, 2)`` ->
        ``(B, hidden, h, w)``, before its ReLU.

        h_fc1 is linear and bilinear interpolation is linear, so the hypercolumn is never
        concatenated: each layer goes through its slice of h_fc1's weight at whichever of
        its own resolution and the grid's is smaller, and the results are summed."""
        positions = grid.shape[1] * grid.shape[2]
        out = self.h_fc1.bias.view(1, -1, 1, 1)
        for x, weight in zip(features, self.h_fc1.weight.split(self.taps, dim=1)):
            if x.shape[-2] * x.shape[-1] < positions:
                out = out + _sample(F.conv2d(x, weight), grid)
            else:
                out = out + F.conv2d(_sample(x, grid), weight)
        return out

    def heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h_fc1 output -> hue and chroma logits ``(B, K, ...)``."""
        hidden = torch.relu(hidden)
        return self.hue(hidden), self.chroma(hidden)

    def forward(self, lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CIE L ``(B, 1, H, W)``, H and W multiples of 32 -> hue and chroma logits
        ``(B, K, H/4, W/4)`` from the dense hypercolumns at a quarter of the resolution."""
        h, w = lightness.shape[-2:]
        grid = cell_grid(h, w, 4, lightness.device)
        return self.heads(self.hypercolumn(self.features(lightness), grid))

    def histograms(self, lightness: torch.Tensor, global_hint: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """CIE L ``(B, 1, H, W)`` of any size -> hue and chroma histograms ``(B, K, H, W)``.

        With ``global_hint`` (sRGB ``(1, 3, h, w)``), the histograms are adjusted towards
        its hue and chroma histograms by ``histogram_transfer`` (equation 5), run once per
        channel: chroma first, then hue with the pixels weighted by their adjusted chroma
        median, as the reference's hue histogram is weighted by its chroma."""
        padded, (h, w) = pad_to(lightness, 32)
        hue_logits, chroma_logits = self(padded)
        hue, chroma = torch.softmax(hue_logits.float(), 1), torch.softmax(chroma_logits.float(), 1)
        if global_hint is not None:
            hue, chroma = self._transfer(hue, chroma, global_hint.to(hue.device).float(), (h + 3) // 4, (w + 3) // 4)
        hue = F.interpolate(hue, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        chroma = F.interpolate(chroma, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return hue[..., :h, :w], chroma[..., :h, :w]

    def _transfer(self, hue: torch.Tensor, chroma: torch.Tensor, reference: torch.Tensor, h: int, w: int):
        """Histogram transfer on the quarter-resolution histograms; the bias is solved on
        the cells that cover the image (not its padding) and applied to all of them."""
        target_hue, target_chroma = reference_histograms(reference, self.config.bins)
        target_hue, target_chroma = target_hue.mean(0, keepdim=True), target_chroma.mean(0, keepdim=True)
        bias = histogram_transfer(chroma[..., :h, :w], target_chroma)
        chroma = apply_bias(torch.log(chroma.clamp_min(EPS)), bias)
        if target_hue.sum() > 0:
            weights = chroma_median(chroma[..., :h, :w])
            bias = histogram_transfer(hue[..., :h, :w], target_hue, weights)
            hue = apply_bias(torch.log(hue.clamp_min(EPS)), bias)
        return hue, chroma

    def decode(self, lightness: torch.Tensor, hue: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """Histograms -> sRGB: chroma median, hue expectation, chromatic fading, bicone."""
        hue_value, magnitude = hue_expectation(hue)
        chroma_value = chromatic_fading(chroma_median(chroma), magnitude, self.config.fade)
        return reconstruct_rgb(lightness, hue_value, chroma_value)

    def colorize(self, lightness: torch.Tensor, options: AutoOptions = AutoOptions()) -> torch.Tensor:
        """CIE L ``(B, 1, H, W)`` -> ab ``(B, 2, H, W)`` in Lab units: the ab of the decoded
        sRGB colour (its own L may differ slightly from the input's; the caller recombines
        the ab with the input L)."""
        with torch.no_grad():
            hue, chroma = self.histograms(lightness, options.global_hint)
            rgb = self.decode(lightness.float(), hue, chroma)
            return color.rgb_to_lab(rgb)[:, 1:].to(lightness.dtype)

    def training_losses(self, rgb: torch.Tensor, samples: int | None = SAMPLES,
                        generator: torch.Generator | None = None,
                        weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The loss of equation (3) on sRGB images ``(B, 3, H, W)`` in [0, 1].

        ``D_KL(y_C || f_C) w_C + lambda_H y_C D_KL(y_H || f_H)`` with one-hot targets (R = 1,
        so each KL is a log loss), lambda_H = 5 and the chroma term weighted by
        w_C = 3 min(L, 1/3, 1 - L) (L the grey level). Hypercolumns are extracted at
        ``samples`` random pixels per image (``generator`` makes them reproducible; on the
        CPU), or at every pixel when ``samples`` is None. Returns ``hue``, ``chroma`` and
        their sum ``loss``. There is no prior, so no ``weights`` (taken so that every
        network is called alike by the training loop)."""
        lightness = color.rgb_to_lab(rgb)[:, :1]
        padded, (h, w) = pad_to(lightness, 32)
        b = rgb.shape[0]
        if samples is None:
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            ys, xs = ys.reshape(1, -1).expand(b, -1), xs.reshape(1, -1).expand(b, -1)
        else:
            ys = torch.randint(0, h, (b, samples), generator=generator)
            xs = torch.randint(0, w, (b, samples), generator=generator)
        ys, xs = ys.to(rgb.device), xs.to(rgb.device)
        grid = pixel_grid(ys, xs, *padded.shape[-2:])
        hue_logits, chroma_logits = self.heads(self.hypercolumn(self.features(padded), grid))

        index = (ys * w + xs)[:, None]
        hue, chroma = (v.flatten(2).gather(2, index)[:, 0] for v in hue_chroma(rgb))
        grey = lightness_to_grey(lightness).flatten(2).gather(2, index)[:, 0]
        bins = self.config.bins
        hue_loss = F.cross_entropy(hue_logits[:, :, 0].float(), hue_bins(hue, bins), reduction="none")
        chroma_loss = F.cross_entropy(chroma_logits[:, :, 0].float(), chroma_bins(chroma, bins), reduction="none")
        chroma_weight = 3 * torch.minimum(grey, 1 - grey).clamp(max=1 / 3)
        losses = {"hue": (HUE_WEIGHT * chroma * hue_loss).mean(), "chroma": (chroma_weight * chroma_loss).mean()}
        losses["loss"] = losses["hue"] + losses["chroma"]
        return losses
