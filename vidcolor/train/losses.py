"""Training losses of the exemplar network (He et al. 2018, sections 3.2.1 and 3.2.4).

- Chrominance loss: smooth-L1 between the predicted ab and the ground truth, the network
  guided by the "fake reference" T'_ab (the ground truth seen through the mapping cycle).
- Perceptual loss: squared L2 between the deepest backbone features (relu5_1) of the
  colorized image and of the original, the network guided by the real warped reference R'_ab.
- A two-branch batch: the first half of the batch trains the chrominance branch, the second
  the perceptual branch, weighted by ``alpha`` (0.005 in the paper).
- Unrelated references (ours, not the paper's): the last pairs of a batch may have a
  reference whose colours are wrong for the target; the network, given that reference's
  warped colour, is held to the target's own colour by the chrominance loss, so copying
  what does not fit costs it.
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
    unrelated: torch.Tensor


def exemplar_losses(net, target_rgb: torch.Tensor, reference_rgb: torch.Tensor, alpha: float = ALPHA,
                    found=None, unrelated: int = 0) -> Losses:
    """The two-branch batch of section 3.2.4 for ``net`` (an ``ExemplarNet``): pairs of
    target and reference sRGB images ``(B, 3, H, W)``; of the first ``B - unrelated`` pairs,
    the first half (rounded up) trains the chrominance branch and the rest the perceptual
    branch (one pair trains both); the last ``unrelated`` pairs, whose references do not
    fit, train the network to keep the target's colour against the warped reference's
    (chrominance loss, weight 1). ``found`` may hold the pairs' precomputed correspondence
    (the backbone is frozen, so it does not change during training)."""
    lab = color.rgb_to_lab(target_rgb)
    lightness, target_ab = lab[:, :1], lab[:, 1:]
    if found is None:
        with torch.no_grad():
            found = net.similarity(lightness, net.prepare(reference_rgb))
    b = target_rgb.shape[0] - unrelated
    if unrelated:
        last = slice(b, b + unrelated)
        predicted = net.colorize(lightness[last], found.warped_ab[last], found.similarity[last])
        against = chrominance_loss(predicted, target_ab[last])
    else:
        against = torch.zeros((), device=target_rgb.device)
    if b == 0:
        zero = torch.zeros((), device=target_rgb.device)
        return Losses(against, zero, zero, against)
    half = (b + 1) // 2
    chrom = slice(0, half)
    perc = slice(half, b) if b > 1 else slice(0, 1)

    guide = found.fake_reference(target_ab)[chrom]
    predicted = net.colorize(lightness[chrom], guide, found.similarity[chrom])
    chrominance = chrominance_loss(predicted, target_ab[chrom])

    predicted = net.colorize(lightness[perc], found.warped_ab[perc], found.similarity[perc])
    rgb = color.lab_to_rgb(torch.cat((lightness[perc], predicted), 1))
    perceptual = perceptual_loss(net.backbone, rgb, target_rgb[perc])
    return Losses(chrominance + alpha * perceptual + against, chrominance, perceptual, against)
