"""Colour as classes (Zhang et al. 2016, "Colorful Image Colorization", section 2.1-2.2).

ab space is quantised on a grid of step 10 into the Q = 313 bins the authors kept as in
gamut (``ab_bins_313.txt`` beside this file, a-major order as in their release). A pixel's
colour becomes a soft label over its 10 nearest bins (a Gaussian of sigma 5 around the true
ab: ``soft_encode``); rare colours are favoured in training by class rebalancing
(``rebalancing_weights``, lambda = 1/2); a distribution is turned back into one colour by
its mean, its mode or the annealed mean of temperature T (``decode``, T = 0.38).

Distributions are ``(B, Q, H, W)`` tensors; ab is ``(B, 2, H, W)`` in Lab units.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F

GRID = 10.0
NEIGHBOURS = 10
SIGMA = 5.0
LAMBDA = 0.5
TEMPERATURE = 0.38
DECODES = ("annealed", "mean", "mode")


@functools.lru_cache(maxsize=None)
def _bins() -> torch.Tensor:
    path = Path(__file__).with_name("ab_bins_313.txt")
    rows = [line.split() for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return torch.tensor([[float(a), float(b)] for a, b in rows])


def ab_bins(device=None, dtype=torch.float32) -> torch.Tensor:
    """The 313 bin centres ``(Q, 2)``: (a, b) in Lab units."""
    return _bins().to(device=device, dtype=dtype)


def full_grid(device=None) -> torch.Tensor:
    """The 529 centres of the 23 x 23 grid over [-110, 110]^2, a-major (Zhang et al. 2017's
    colour-distribution output)."""
    axis = torch.arange(-110.0, 111.0, GRID, device=device)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack((a.flatten(), b.flatten()), 1)


def _flat(ab: torch.Tensor) -> torch.Tensor:
    return ab.permute(0, 2, 3, 1).reshape(-1, 2)


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest bin of every pixel: ab ``(B, 2, H, W)`` -> ``(B, H, W)``."""
    bins = ab_bins(ab.device, ab.dtype) if bins is None else bins
    b, _, h, w = ab.shape
    return torch.cdist(_flat(ab), bins).argmin(1).view(b, h, w)


def soft_encode(ab: torch.Tensor, k: int = NEIGHBOURS, sigma: float = SIGMA, bins: torch.Tensor | None = None) -> torch.Tensor:
    """The soft label Z of every pixel: Gaussian weights (``sigma``) on its ``k`` nearest
    bins, summing to 1. ab ``(B, 2, H, W)`` -> ``(B, Q, H, W)``."""
    bins = ab_bins(ab.device, ab.dtype) if bins is None else bins
    b, _, h, w = ab.shape
    dist = torch.cdist(_flat(ab), bins)  # (N, Q)
    near, index = dist.topk(k, dim=1, largest=False)
    weight = torch.softmax(-near.square() / (2 * sigma * sigma), dim=1)
    z = torch.zeros_like(dist).scatter_(1, index, weight)
    return z.view(b, h, w, -1).permute(0, 3, 1, 2)


def empirical_prior(ab_batches, sigma: float = SIGMA, bins: torch.Tensor | None = None) -> torch.Tensor:
    """The colour prior p over the bins: how often each is the nearest bin of a pixel in
    ``ab_batches`` (an iterable of ``(B, 2, H, W)``), smoothed by a Gaussian of ``sigma``
    in ab space, as the paper does (section 2.2). Returns ``(Q,)`` summing to 1."""
    counts = None
    for ab in ab_batches:
        bins = ab_bins(ab.device, ab.dtype) if bins is None else bins
        hits = torch.bincount(nearest_bin(ab, bins).flatten(), minlength=len(bins)).to(ab.dtype)
        counts = hits if counts is None else counts + hits
    if counts is None:
        raise ValueError("no colours to estimate the prior from")
    kernel = torch.exp(-torch.cdist(bins, bins).square() / (2 * sigma * sigma))
    smoothed = kernel @ (counts / counts.sum())
    return smoothed / smoothed.sum()


def rebalancing_weights(prior: torch.Tensor, lam: float = LAMBDA) -> torch.Tensor:
    """Class rebalancing (equation 4): w proportional to ((1 - lambda) p + lambda / Q)^-1,
    scaled so that the expectation of w under the prior is 1."""
    w = 1.0 / ((1.0 - lam) * prior + lam / prior.numel())
    return w / (prior * w).sum()


def pixel_weights(ab: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The rebalancing weight of every pixel, by its nearest bin: ``(B, H, W)``."""
    return weights.to(ab.device, ab.dtype)[nearest_bin(ab)]


def annealed(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Re-normalised ``probs^(1/T)`` over the bin axis (1), computed in the log domain."""
    return torch.softmax(torch.log(probs.clamp_min(1e-12)) / temperature, dim=1)


def decode(probs: torch.Tensor, mode: str = "annealed", temperature: float = TEMPERATURE,
           bins: torch.Tensor | None = None) -> torch.Tensor:
    """A distribution over the bins ``(B, Q, H, W)`` -> ab ``(B, 2, H, W)``: its ``mean``,
    its ``mode`` (the most likely bin) or the ``annealed`` mean (equation 5: the mean of the
    distribution sharpened by temperature T; T = 1 is the mean, T -> 0 the mode)."""
    bins = ab_bins(probs.device, probs.dtype) if bins is None else bins
    if mode == "mode":
        return bins[probs.argmax(1)].permute(0, 3, 1, 2)
    if mode == "annealed":
        if not temperature > 0:
            raise ValueError(f"the temperature must be positive, not {temperature}")
        probs = annealed(probs, temperature)
    elif mode != "mean":
        raise ValueError(f"decode {mode!r}: choose {', '.join(DECODES)}")
    return torch.einsum("bqhw,qc->bchw", probs, bins)


def histogram(ab: torch.Tensor, bins: torch.Tensor | None = None, pool: int = 4) -> torch.Tensor:
    """A picture's colour histogram over the bins (the global hint of Zhang et al. 2017):
    ab average-pooled ``pool x pool``, each cell hard-assigned to its nearest bin, the
    counts averaged: ``(B, Q)`` summing to 1 per picture."""
    if pool > 1 and min(ab.shape[-2:]) >= pool:
        ab = F.avg_pool2d(ab, pool)
    index = nearest_bin(ab, bins)
    q = len(ab_bins() if bins is None else bins)
    one_hot = F.one_hot(index.flatten(1), q).to(ab.dtype)
    return one_hot.mean(1)


# -- the metric grid: 23 x 23 cells of side 10 over the whole ab square ----------------------

METRIC_GRID = 10.0
METRIC_RANGE = 110.0
METRIC_SIDE = int(2 * METRIC_RANGE / METRIC_GRID) + 1  # 23 bin centres per axis: -110, -100, ..., 110
METRIC_BINS = METRIC_SIDE * METRIC_SIDE


def grid_bins(ab: torch.Tensor) -> torch.Tensor:
    """Index (0..528) of the nearest bin centre on the grid of step 10 over ab (23 x 23
    centres -110..110, a-major) for each pixel of ab ``(..., 2, H, W)`` -> ``(..., H, W)``."""
    t = ab.float()
    idx = (torch.round(t / METRIC_GRID) + METRIC_RANGE / METRIC_GRID).clamp(0, METRIC_SIDE - 1).long()
    return idx[..., 0, :, :] * METRIC_SIDE + idx[..., 1, :, :]
