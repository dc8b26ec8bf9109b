"""The 313 ab bins, soft-encoding, class rebalancing and decoding (Zhang et al. 2016)."""

from __future__ import annotations

import kornia
import torch

from vidcolor.ops import quantize


def srgb_ab(steps: int = 48) -> torch.Tensor:
    """The ab of a grid of sRGB colours ``(N, 2)``."""
    v = torch.linspace(0, 1, steps)
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij"), 0).reshape(1, 3, -1, 1)
    return kornia.color.rgb_to_lab(rgb)[0, 1:, :, 0].T


def test_the_bins_are_313_cells_of_the_grid_of_10():
    bins = quantize.ab_bins()
    assert bins.shape == (313, 2)
    assert torch.equal(bins, (bins / 10).round() * 10)
    assert len(torch.unique(bins, dim=0)) == 313
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100 and bins[:, 1].min() == -110 and bins[:, 1].max() == 100
    assert torch.equal(bins[:, 0], bins[:, 0].sort().values)  # a-major
    full = quantize.full_grid()
    assert full.shape == (529, 2) and {tuple(b) for b in bins.tolist()} <= {tuple(f) for f in full.tolist()}


def test_the_bins_cover_the_srgb_gamut_and_stay_near_it():
    """Every sRGB colour falls in the cell of a bin (within 5 in a and b); every bin lies
    within 1.5 cells of an sRGB colour at some L. (The set is the authors': strictly, 227
    of the 313 centres are sRGB colours themselves; rounding every sRGB colour to the grid
    reaches 261 of them.)"""
    ab, bins = srgb_ab(), quantize.ab_bins()
    cell = (ab[:, None, :] - bins[None]).abs().amax(-1).amin(1)
    assert cell.max() <= 5.0 + 1e-4
    assert torch.cdist(bins, ab).amin(1).max() < 15.0
    rounded = torch.unique((ab / 10).round() * 10, dim=0)
    assert len(rounded) == 261


def test_soft_encoding_is_a_gaussian_on_the_ten_nearest_bins():
    torch.manual_seed(0)
    ab = torch.randn(2, 2, 5, 7) * 30
    z = quantize.soft_encode(ab)
    assert z.shape == (2, 313, 5, 7)
    assert torch.allclose(z.sum(1), torch.ones(2, 5, 7))
    assert ((z > 0).sum(1) == 10).all()
    # the nearest bin carries the most weight, and weights fall with distance
    assert torch.equal(z.argmax(1), quantize.nearest_bin(ab))
    one = torch.tensor([[3.0], [-17.0]]).view(1, 2, 1, 1)
    z1 = quantize.soft_encode(one)[0, :, 0, 0]
    d = (quantize.ab_bins() - torch.tensor([3.0, -17.0])).norm(dim=1)
    kept = z1 > 0
    expected = torch.softmax(-d[kept] ** 2 / 50, 0)
    assert torch.allclose(z1[kept], expected, atol=1e-6)


def test_annealed_mean_of_a_soft_label_tends_to_the_nearest_bin():
    g = torch.Generator().manual_seed(1)
    centres = quantize.ab_bins()[torch.randint(0, 313, (2, 16, 16), generator=g)].permute(0, 3, 1, 2)
    ab = centres + (torch.rand(2, 2, 16, 16, generator=g) - 0.5) * 6  # off-centre, but no ties
    z = quantize.soft_encode(ab)
    nearest = quantize.ab_bins()[quantize.nearest_bin(ab)].permute(0, 3, 1, 2)
    assert torch.equal(nearest, centres)
    assert torch.equal(quantize.decode(z, "mode"), nearest)
    assert (quantize.decode(z, "annealed", 1e-4) - nearest).abs().max() < 1e-3
    # T = 1 is the plain mean, which lies between the bins (closer to the true colour)
    mean = quantize.decode(z, "mean")
    assert torch.allclose(quantize.decode(z, "annealed", 1.0), mean, atol=1e-4)
    assert (mean - ab).norm(dim=1).mean() < (nearest - ab).norm(dim=1).mean()


def test_rebalancing_weights_have_expectation_one_and_favour_rare_colours():
    torch.manual_seed(2)
    common = torch.randn(4, 2, 16, 16) * 3  # mostly near grey
    rare = torch.tensor([60.0, 60.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    prior = quantize.empirical_prior([common, rare])
    assert torch.isclose(prior.sum(), torch.tensor(1.0)) and (prior >= 0).all()
    w = quantize.rebalancing_weights(prior, 0.5)
    assert torch.isclose((prior * w).sum(), torch.tensor(1.0), atol=1e-5)
    grey_bin = quantize.nearest_bin(torch.zeros(1, 2, 1, 1)).item()
    rare_bin = quantize.nearest_bin(rare[:, :, :1, :1]).item()
    assert w[rare_bin] > 2 * w[grey_bin]
    # lambda = 1: uniform weights, all 1; lambda = 0: the inverse prior
    assert torch.allclose(quantize.rebalancing_weights(prior, 1.0), torch.ones(313), atol=1e-5)
    positive = 0.9 * prior + 0.1 / 313
    inverse = quantize.rebalancing_weights(positive, 0.0)
    assert torch.allclose(inverse * positive, torch.full((313,), 1 / 313), atol=1e-6)


def test_histogram_of_a_two_colour_picture():
    ab = torch.zeros(1, 2, 8, 8)
    ab[:, 0, :, :2] = 40.0  # a quarter of the picture reddish
    hist = quantize.histogram(ab, pool=1)
    assert torch.isclose(hist.sum(), torch.tensor(1.0))
    red = quantize.nearest_bin(torch.tensor([40.0, 0.0]).view(1, 2, 1, 1)).item()
    grey = quantize.nearest_bin(torch.zeros(1, 2, 1, 1)).item()
    assert torch.isclose(hist[0, red], torch.tensor(0.25)) and torch.isclose(hist[0, grey], torch.tensor(0.75))
