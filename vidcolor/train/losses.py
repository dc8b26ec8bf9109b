"""Training losses of the exemplar network (He et al. 2018, sections 3.2.1 and 3.2.4).

- Chrominance loss: smooth-L1 between the predicted ab and the ground truth, the network
  guided by the "fake reference" T'_ab (the ground truth seen through the mapping cycle).
- Perceptual loss: squared L2 between the deepest backbone features (relu5_1) of the
  colorized image and of the original, the network guided by the real warped reference R'_ab.
- A two-branch batch: the first half of the batch trains the chrominance branch, the second
  the perceptual branch, weighted by ``alpha`` (0.005 in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidcolor.ops import color

ALPHA = 0.005


def chrominance_loss(predicted_ab: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
    """Mean smooth-L1 (threshold 1, in Lab units) over pixels and both channels."""
    return F.smooth_l1_loss(predicted_ab, target_ab, beta=1.0)


def perceptual_loss(backbone, predicted_rgb: torch.Tensor, target_rgb: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the deepest features (relu5_1) of two sRGB images."""
    with torch.no_grad():
        target = backbone(target_rgb)[-1]
    return F.mse_loss(backbone(predicted_rgb)[-1], target)


@dataclass
class Losses:
    total: torch.Tensor
    chrominance: torch.Tensor
    perceptual: torch.Tensor


def exemplar_losses(net, target_rgb: torch.Tensor, reference_rgb: torch.Tensor, alpha: float = ALPHA,
                    found=None) -> Losses:
    """The two-branch batch of section 3.2.4 for ``net`` (an ``ExemplarNet``): pairs of
    target and reference sRGB images ``(B, 3, H, W)``; the first ``ceil(B/2)`` pairs train the
    chrominance branch and the rest the perceptual branch (with ``B = 1``, the one pair trains
    both). ``found`` may hold the pairs' precomputed correspondence (the backbone is frozen,
    so it does not change during training)."""
    lab = color.rgb_to_lab(target_rgb)
    lightness, target_ab = lab[:, :1], lab[:, 1:]
    if found is None:
        with torch.no_grad():
            found = net.similarity(lightness, net.prepare(reference_rgb))
    b = target_rgb.shape[0]
    half = (b + 1) // 2
    chrom = slice(0, half)
    perc = slice(half, b) if b > 1 else slice(0, 1)

    guide = found.fake_reference(target_ab)[chrom]
    predicted = net.colorize(lightness[chrom], guide, found.similarity[chrom])
    chrominance = chrominance_loss(predicted, target_ab[chrom])

    predicted = net.colorize(lightness[perc], found.warped_ab[perc], found.similarity[perc])
    rgb = color.lab_to_rgb(torch.cat((lightness[perc], predicted), 1))
    perceptual = perceptual_loss(net.backbone, rgb, target_rgb[perc])
    return Losses(chrominance + alpha * perceptual, chrominance, perceptual)
