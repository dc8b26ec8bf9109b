"""Legal colour: ab shortened along its hue to what sRGB shows at each L; blacks stay black,
whites stay white, legal colours are kept, and every model's output goes through it."""

from __future__ import annotations

import kornia
import numpy as np
import torch

from conftest import colour_reference
from vidcolor.film.engine import Engine
from vidcolor.ops import color, gamut


def _random_lab(seed: int, n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lightness = torch.rand(2, 1, n, n, generator=g) * 100
    ab = (torch.rand(2, 2, n, n, generator=g) - 0.5) * 260
    return torch.cat((lightness, ab), 1)


def test_linear_rgb_is_kornias_conversion_without_the_curve():
    rgb = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    lab = color.rgb_to_lab(rgb)
    torch.testing.assert_close(gamut.linear_rgb(lab), kornia.color.rgb_to_linear_rgb(rgb), atol=2e-4, rtol=0)


def test_every_colour_comes_out_legal_with_its_hue_kept():
    lab = _random_lab(0)
    assert gamut.in_gamut(lab).float().mean() < 0.3  # most of these are far outside
    ab = gamut.legal_ab(lab[:, :1], lab[:, 1:])
    rgb = gamut.linear_rgb(torch.cat((lab[:, :1], ab), 1))
    assert float(rgb.min()) > -0.006 and float(rgb.max()) < 1.006
    coloured = color.chroma(ab)[:, 0] > 1.0
    before = torch.atan2(lab[:, 2], lab[:, 1])[coloured]
    after = torch.atan2(ab[:, 1], ab[:, 0])[coloured]
    assert float(torch.remainder(after - before + torch.pi, 2 * torch.pi).sub(torch.pi).abs().max()) < 1e-3
    assert bool((color.chroma(ab) <= color.chroma(lab[:, 1:]) + 1e-4).all())  # only ever shortened


def test_legal_colours_are_kept():
    rgb = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    lab = color.rgb_to_lab(rgb)
    ab = gamut.legal_ab(lab[:, :1], lab[:, 1:])
    moved = (ab - lab[:, 1:]).abs().amax(1)
    # kept, but for a few on the gamut's edge: the table's step, and the sliver beside the yellow
    # cusp where the legal part of a hue ray is not one segment (shortened, still legal)
    assert float((moved < 0.5).float().mean()) > 0.995
    assert bool(gamut.in_gamut(torch.cat((lab[:, :1], ab), 1), 1e-2).all())  # within the interpolation
    inside = color.chroma(lab[:, 1:]) < 0.5 * gamut.max_chroma(lab[:, :1], torch.atan2(lab[:, 2:], lab[:, 1:2]))
    assert int(inside.sum()) > 300 and bool((moved[inside[:, 0]] == 0).all())


def test_black_and_white_have_no_chroma():
    ab = torch.full((1, 2, 4, 4), 30.0)
    for level in (0.0, 100.0):
        assert float(color.chroma(gamut.legal_ab(torch.full((1, 1, 4, 4), level), ab)).max()) < 0.2
    near = gamut.legal_ab(torch.full((1, 1, 4, 4), 3.0), ab)  # near-black: a little
    assert 0.2 < float(color.chroma(near).max()) < 15.0


def test_letterbox_bars_stay_black_and_white_stays_white():
    """A film frame with black bars and a white title, coloured from a strongly coloured
    reference: the bars and the white come out exactly black and white."""
    grey = np.full((96, 160), 120, np.uint8)
    grey[:16], grey[-16:] = 0, 0
    grey[40:56, 40:120] = 255
    reference = colour_reference(160, 96)
    engine = Engine("transfer", device="cpu", work_res=48)
    rgb = engine.colorize([grey], engine.prepare(reference))[0]
    assert int(rgb[:16].max()) == 0 and int(rgb[-16:].max()) == 0
    assert int(rgb[44:52, 50:110].min()) == 255
    middle = rgb[20:36].astype(int)
    assert np.abs(middle - middle.mean(2, keepdims=True)).max() > 5  # the picture itself is coloured
