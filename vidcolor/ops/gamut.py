"""Legal colour: chrominance limited to what sRGB can show at each pixel's lightness.

A CIE Lab colour (L, a, b) is shown in sRGB only when its linear RGB lies in [0, 1]; the
largest chroma that does depends on L and the hue, and falls to zero at L = 0 and L = 100.
A predicted ab beyond it is clipped channel by channel on the way to RGB, which changes the
hue and lifts blacks (a black letterbox bar with ab (20, 15) comes out dark red). ``legal_ab``
shortens each pixel's ab along its own hue to the largest legal chroma instead, so blacks
stay black, whites stay white and hues are kept.

The largest legal chroma is tabulated once on a grid of L and hue angle (a scan, then
bisection, along each hue ray) and read with bilinear interpolation: a handful of
operations per pixel.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

L_STEPS = 201  # table rows: L = 0, 0.5, ..., 100
HUE_STEPS = 360  # table columns: hue angles 1 degree apart
MAX_SEARCHED = 200.0  # no sRGB colour has a chroma this large
SCAN_STEP = 2.0  # chroma step of the scan for each ray's first exit from the gamut

WHITE = (0.95047, 1.0, 1.08883)  # D65, as ``color.rgb_to_lab``
XYZ_TO_LINEAR_RGB = ((3.2404542, -1.5371385, -0.4985314),  # sRGB primaries (IEC 61966-2-1)
                     (-0.9692660, 1.8760108, 0.0415560),
                     (0.0556434, -0.2040259, 1.0572252))
DELTA = 6.0 / 29.0


def linear_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab ``(B, 3, H, W)`` -> linear sRGB, unclipped (the sRGB curve is monotonic, so a
    colour is in gamut exactly when its linear RGB is in [0, 1])."""
    fy = (lab[:, :1] + 16.0) / 116.0
    f = torch.cat((fy + lab[:, 1:2] / 500.0, fy, fy - lab[:, 2:3] / 200.0), 1)
    xyz = torch.where(f > DELTA, f ** 3, 3 * DELTA**2 * (f - 4.0 / 29.0))
    xyz = xyz * torch.tensor(WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    matrix = torch.tensor(XYZ_TO_LINEAR_RGB, dtype=lab.dtype, device=lab.device)
    return torch.einsum("ij,bjhw->bihw", matrix, xyz)


def in_gamut(lab: torch.Tensor, tolerance: float = 1e-4) -> torch.Tensor:
    """Whether each Lab colour ``(B, 3, H, W)`` is shown in sRGB unclipped: ``(B, H, W)`` bool."""
    rgb = linear_rgb(lab)
    return ((rgb >= -tolerance) & (rgb <= 1 + tolerance)).all(1)


@functools.lru_cache(maxsize=8)
def max_chroma_table(device: str = "cpu") -> torch.Tensor:
    """The largest legal chroma ``(L_STEPS, HUE_STEPS + 1)`` at L = 0..100 and hue angles
    0..360 degrees (the last column repeats the first, for interpolation across 0): where
    each hue ray first leaves the gamut (beside the yellow cusp a ray can come back in; the
    colours past that gap are left out), found by a scan in steps of ``SCAN_STEP`` then
    bisection."""
    lightness = torch.linspace(0.0, 100.0, L_STEPS)
    hue = torch.arange(HUE_STEPS) * (2 * math.pi / HUE_STEPS)
    L, H = torch.meshgrid(lightness, hue, indexing="ij")
    cos, sin = torch.cos(H), torch.sin(H)

    def legal(c: torch.Tensor) -> torch.Tensor:
        return in_gamut(torch.stack((L, c * cos, c * sin))[None], tolerance=1e-6)[0]

    steps = torch.arange(1, int(MAX_SEARCHED / SCAN_STEP) + 1) * SCAN_STEP
    high = torch.full_like(L, MAX_SEARCHED)
    for c in steps.flip(0):  # the first illegal step of each ray
        high = torch.where(legal(torch.full_like(L, float(c))), high, torch.full_like(L, float(c)))
    low = (high - SCAN_STEP).clamp_min(0.0)
    for _ in range(12):
        mid = (low + high) / 2
        ok = legal(mid)
        low, high = torch.where(ok, mid, low), torch.where(ok, high, mid)
    low = torch.where(legal(low), low, torch.zeros_like(low))  # black and white themselves
    return torch.cat((low, low[:, :1]), 1).to(device)


def max_chroma(lightness: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """The largest legal chroma at L ``(B, 1, H, W)`` in [0, 100] and hue angle (radians,
    same shape), interpolated from the table."""
    table = max_chroma_table(str(lightness.device)).to(lightness.dtype)
    x = torch.remainder(hue, 2 * math.pi) / math.pi - 1.0  # [0, 2 pi) -> [-1, 1)
    y = lightness.clamp(0.0, 100.0) / 50.0 - 1.0
    b = lightness.shape[0]
    grid = torch.stack((x, y.to(x.dtype)), -1).view(b, 1, -1, 2).to(table.dtype)  # each image's pixels as a row
    limit = F.grid_sample(table[None, None].expand(b, 1, -1, -1), grid, mode="bilinear",
                          padding_mode="border", align_corners=True)
    return limit.view_as(lightness)


def legal_ab(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """ab ``(B, 2, H, W)`` shortened along its hue, where needed, to the largest chroma sRGB
    shows at L ``(B, 1, H, W)`` (in [0, 100]); legal colours are left as they are."""
    a, b = ab[:, :1], ab[:, 1:]
    chroma = torch.sqrt(a * a + b * b)
    limit = max_chroma(lightness, torch.atan2(b, a))
    scale = torch.where(chroma > limit, limit / chroma.clamp_min(1e-6), torch.ones_like(chroma))
    return ab * scale
