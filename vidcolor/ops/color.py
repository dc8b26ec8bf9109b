"""Colour science: sRGB <-> CIE Lab (D65), normalisation, edge-aware recombination, and
colourfulness (Hasler and Suesstrunk 2003: ``vidcolor eval`` and the per-shot report).

Conventions: images are float tensors shaped ``(B, C, H, W)``; sRGB in ``[0, 1]``; CIE Lab
with L in ``[0, 100]`` and a, b roughly in ``[-110, 110]``. Constants are created on the
input's device and dtype so every function works on CPU, CUDA, fp32 and fp16 alike.

Pictures larger than ``WHOLE_PIXELS`` (1080p) are worked on at full size in bands of about
``BAND_PIXELS`` pixels (rows at a time), so a large photo never exists as a full-size float
image; film frames up to 1080p are done whole.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import kornia
import numpy as np
import torch
import torch.nn.functional as F

L_CENTER = 50.0
L_SCALE = 100.0
AB_SCALE = 110.0
BAND_PIXELS = 1 << 18  # pixels per band of the full-size stages (some 60 MB of temporaries)
WHOLE_PIXELS = 1 << 21  # pictures up to this size (1080p film frames) are done whole: fastest


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


def band_rows(row_pixels: int, rows: int) -> int:
    """Rows per band for a picture of ``rows`` rows of ``row_pixels`` pixels (at least one;
    all of them when the picture is no larger than ``WHOLE_PIXELS``)."""
    if row_pixels * rows <= WHOLE_PIXELS:
        return max(1, rows)
    return max(1, BAND_PIXELS // max(1, row_pixels))


def rgb_to_grey_levels(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(H, W, 3)`` (uint8 or uint16, any strides) -> grey levels of the same depth whose
    sRGB grey has the same CIE L; a band of rows at a time."""
    top = np.iinfo(rgb.dtype).max
    grey = np.empty(rgb.shape[:2], rgb.dtype)
    step = band_rows(rgb.shape[1], rgb.shape[0])
    for y in range(0, rgb.shape[0], step):
        band = torch.from_numpy(np.ascontiguousarray(rgb[y : y + step])).permute(2, 0, 1)[None].float() / float(top)
        grey[y : y + step] = lightness_to_grey_levels(rgb_to_lab(band)[0, 0], top + 1)
    return grey


def lightness_to_grey_levels(lightness: torch.Tensor, levels: int = 256) -> np.ndarray:
    """CIE L -> grey levels (inverse of :func:`grey_to_lightness`): uint8, or uint16 for
    ``levels`` 65536."""
    table = _lightness_table(levels).to(lightness.device)
    index = torch.searchsorted(table, lightness.contiguous().clamp(0, 100))
    index = index.clamp(1, levels - 1)
    below, above = table[index - 1], table[index]
    nearer_below = (lightness - below) < (above - lightness)
    return (index - nearer_below.long()).cpu().numpy().astype(np.uint8 if levels == 256 else np.uint16)


def compose_rgb(lightness: torch.Tensor, ab: torch.Tensor, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """L ``(B, 1, H, W)`` and ab ``(B, 2, H, W)`` -> RGB ``(B, H, W, 3)``, uint8 (or uint16
    with ``dtype`` torch.uint16)."""
    top = 65535.0 if dtype == torch.uint16 else 255.0
    rgb = lab_to_rgb(torch.cat([lightness, ab], dim=1).float())
    return (rgb * top + 0.5).clamp(0, top).to(dtype).permute(0, 2, 3, 1)


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


def resize_in_rows(load: Callable[[int, int], torch.Tensor], full: tuple[int, int],
                   size: tuple[int, int]) -> torch.Tensor:
    """``resize(load(0, H), size)``, where ``load(top, bottom)`` gives the rows ``top:bottom``
    of a ``(B, C, H, W)`` image and ``full`` is its ``(H, W)``. A downscale of an image larger
    than a band averages each output row from its own input rows (the windows of the area
    mode, summed in the same order, so the result is the same), and the whole image never
    exists at full size."""
    (height, width), (h, w) = full, size
    if h > height or w > width or height * width <= max(BAND_PIXELS, WHOLE_PIXELS):
        return resize(load(0, height), size)
    rows = []
    for i in range(h):
        top, bottom = i * height // h, -(-(i + 1) * height // h)
        rows.append(F.adaptive_avg_pool2d(load(top, bottom), (1, w)))
    return torch.cat(rows, dim=2)


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
    ``(B, 1, h, w)``, lightness_full ``(B, 1, H, W)`` -> ``(B, 2, H, W)``. The same a band of
    rows at a time: :func:`guided_coefficients`, :func:`coefficient_rows`,
    :func:`apply_coefficients`."""
    coeffs = guided_coefficients(ab_low, lightness_low, radius, eps)
    size = tuple(lightness_full.shape[-2:])
    return apply_coefficients(coefficient_rows(coeffs, size, 0, size[0]), lightness_full)


def guided_coefficients(ab_low: torch.Tensor, lightness_low: torch.Tensor, radius: int = 2,
                        eps: float = 1e-3) -> torch.Tensor:
    """The guided filter's local linear model fitted at low resolution: ``(B, 4, h, w)``,
    A's two channels then b's (box filters of ``radius``, all at low resolution)."""
    guide = lightness_low / L_SCALE
    mean_i = _box(guide, radius)
    mean_p = _box(ab_low, radius)
    cov_ip = _box(guide * ab_low, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return torch.cat([_box(a, radius), _box(b, radius)], dim=1)


def coefficient_rows(coeffs: torch.Tensor, size: tuple[int, int], top: int, bottom: int) -> torch.Tensor:
    """Rows ``top:bottom`` of ``coeffs`` ``(B, C, h, w)`` resized bilinearly to ``size``
    (``F.interpolate``, align_corners False), from the low-resolution rows they need only.
    All rows are exactly ``F.interpolate``; a band of them is, to float rounding."""
    height, width = size
    if (top, bottom) == (0, height):
        if tuple(coeffs.shape[-2:]) == tuple(size):
            return coeffs
        return F.interpolate(coeffs, size=tuple(size), mode="bilinear", align_corners=False)
    low = coeffs.shape[-2]
    # the source rows and weights as F.interpolate computes them (float32, a fused multiply-add)
    scale = np.float64(np.float32(low) / np.float32(height))
    centres = (np.arange(top, bottom, dtype=np.float32) + np.float32(0.5)).astype(np.float64)
    source = np.maximum(scale * centres - 0.5, 0).astype(np.float32)
    upper = np.minimum(source.astype(np.int64), low - 1)
    lower = np.minimum(upper + 1, low - 1)
    weight = torch.from_numpy(np.clip(source - upper, 0, 1)).to(coeffs.device).view(1, 1, -1, 1)
    first, last = int(upper[0]), int(lower[-1]) + 1
    rows = coeffs[:, :, first:last]
    if rows.shape[-1] != width:
        rows = F.interpolate(rows, size=(last - first, width), mode="bilinear", align_corners=False)
    above = rows[:, :, torch.from_numpy(upper - first).to(coeffs.device)]
    below = rows[:, :, torch.from_numpy(lower - first).to(coeffs.device)]
    return above * (1 - weight) + below * weight


def apply_coefficients(coeffs: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
    """ab ``(B, 2, H, W)`` of the linear model ``coeffs`` ``(B, 4, H, W)`` (full size) on L."""
    a, b = coeffs.chunk(2, dim=1)
    return a * (lightness / L_SCALE) + b


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


def colourfulness(rgb) -> float:
    """Hasler and Suesstrunk 2003 colourfulness of an RGB image ``(H, W, 3)`` (uint8, or
    floats in [0, 255]) on signed opponent values: ``rg = R - G``, ``yb = (R + G)/2 - B``,
    ``M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)``; 0 for grey."""
    x = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = math.sqrt(rg.var() + yb.var())
    centre = math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return spread + 0.3 * centre
