"""Colour science: sRGB <-> CIE Lab (D65), normalisation, and edge-aware recombination.

Conventions: images are float tensors shaped ``(B, C, H, W)``; sRGB in ``[0, 1]``; CIE Lab
with L in ``[0, 100]`` and a, b roughly in ``[-110, 110]``. Constants are created on the
input's device and dtype so every function works on CPU, CUDA, fp32 and fp16 alike.
"""

from __future__ import annotations

import functools
import math

import kornia
import numpy as np
import torch
import torch.nn.functional as F

L_CENTER = 50.0
L_SCALE = 100.0
AB_SCALE = 110.0


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` in [0, 1] -> CIE Lab ``(B, 3, H, W)``."""
    return kornia.color.rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab ``(B, 3, H, W)`` -> sRGB in [0, 1], out-of-gamut values clipped."""
    return kornia.color.lab_to_rgb(lab, clip=True)


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> roughly [-0.5, 0.5] (centred at 50, divided by 100)."""
    return (lightness - L_CENTER) / L_SCALE


def denormalize_l(lightness: torch.Tensor) -> torch.Tensor:
    return lightness * L_SCALE + L_CENTER


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in Lab units -> roughly [-1, 1]."""
    return ab / AB_SCALE


def denormalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab * AB_SCALE


@functools.lru_cache(maxsize=4)
def _lightness_table(levels: int) -> torch.Tensor:
    grey = torch.linspace(0.0, 1.0, levels, dtype=torch.float64).view(1, 1, 1, levels)
    return rgb_to_lab(grey.expand(1, 3, 1, levels))[0, 0, 0].float()


def grey_to_lightness(grey: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Integer grey levels (uint8 or uint16, any shape) -> CIE L of the grey sRGB colour.

    A grey pixel has R = G = B, so its L depends on the level alone: a lookup table built
    once per bit depth with kornia's exact conversion."""
    grey = torch.as_tensor(grey)
    levels = 256 if grey.dtype == torch.uint8 else 65536
    table = _lightness_table(levels).to(device)
    return table[grey.to(device).long()]


def rgb_to_grey_levels(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB ``(H, W, 3)`` -> uint8 grey levels whose sRGB grey has the same CIE L."""
    lab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)
    return lightness_to_grey_levels(lab[0, 0])


def lightness_to_grey_levels(lightness: torch.Tensor) -> np.ndarray:
    """CIE L -> uint8 grey levels (inverse of :func:`grey_to_lightness`)."""
    table = _lightness_table(256).to(lightness.device)
    index = torch.searchsorted(table, lightness.contiguous().clamp(0, 100))
    index = index.clamp(1, 255)
    below, above = table[index - 1], table[index]
    nearer_below = (lightness - below) < (above - lightness)
    return (index - nearer_below.long()).to(torch.uint8).cpu().numpy()


def compose_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L ``(B, 1, H, W)`` and ab ``(B, 2, H, W)`` -> uint8 RGB ``(B, H, W, 3)``."""
    rgb = lab_to_rgb(torch.cat([lightness, ab], dim=1).float())
    return (rgb * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def work_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Size ``(h, w)`` with the short side equal to ``short_side`` (never upscaled), aspect
    kept, rounded to multiples of 8 so networks with four stride-2 stages fit."""
    scale = min(1.0, short_side / min(height, width))
    h = max(8, int(round(height * scale / 8)) * 8)
    w = max(8, int(round(width * scale / 8)) * 8)
    return h, w


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-averaged downscale or bilinear upscale of ``(B, C, H, W)`` to ``size``."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    if size[0] <= image.shape[-2] and size[1] <= image.shape[-1]:
        return F.interpolate(image, size=size, mode="area")
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    k = 2 * radius + 1
    return kornia.filters.box_blur(x, (k, k), border_type="reflect")


def guided_upsample(
    ab_low: torch.Tensor,
    lightness_low: torch.Tensor,
    lightness_full: torch.Tensor,
    radius: int = 2,
    eps: float = 1e-3,
) -> torch.Tensor:
    """Edge-aware upsampling of chrominance with the fast guided filter (He and Sun 2015).

    The local linear model ``ab = A * L + b`` is fitted at low resolution, its coefficients
    are upsampled bilinearly and applied to the full-resolution L, so colour edges follow the
    luminance edges of the original frame. Shapes: ab_low ``(B, 2, h, w)``, lightness_low
    ``(B, 1, h, w)``, lightness_full ``(B, 1, H, W)`` -> ``(B, 2, H, W)``."""
    guide = lightness_low / L_SCALE
    mean_i = _box(guide, radius)
    mean_p = _box(ab_low, radius)
    cov_ip = _box(guide * ab_low, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    coeffs = torch.cat([_box(a, radius), _box(b, radius)], dim=1)
    size = tuple(lightness_full.shape[-2:])
    if tuple(coeffs.shape[-2:]) != size:
        coeffs = F.interpolate(coeffs, size=size, mode="bilinear", align_corners=False)
    a_full, b_full = coeffs.chunk(2, dim=1)
    return a_full * (lightness_full / L_SCALE) + b_full


def chroma(ab: torch.Tensor) -> torch.Tensor:
    """Chroma ``sqrt(a^2 + b^2)`` of ``(B, 2, H, W)`` -> ``(B, 1, H, W)``."""
    return torch.linalg.vector_norm(ab, dim=1, keepdim=True)


def is_grey(rgb: np.ndarray, max_chroma: float = 5.0) -> bool:
    """True when no pixel of a uint8 RGB image ``(H, W, 3)`` has chroma above ``max_chroma``
    (|ab| in Lab units, as the Caffe colorization recipe tests for grey images)."""
    small = rgb
    step = max(1, int(math.sqrt(rgb.shape[0] * rgb.shape[1] / 65536)))
    small = rgb[::step, ::step]
    lab = rgb_to_lab(torch.from_numpy(np.ascontiguousarray(small)).permute(2, 0, 1)[None].float() / 255.0)
    return bool(chroma(lab[:, 1:]).max() <= max_chroma)


def lightness_to_grey(lightness: torch.Tensor) -> torch.Tensor:
    """CIE L ``(B, 1, H, W)`` in [0, 100] -> the sRGB grey level in [0, 1] with that L (its
    luma too, as R = G = B): what the networks that read a grey picture see."""
    lab = torch.cat((lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)), 1)
    return lab_to_rgb(lab)[:, :1]


def pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad height and width up to a multiple (replicating the border); returns the original size."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return (F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x), (h, w)
