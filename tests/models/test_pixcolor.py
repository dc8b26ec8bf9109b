"""PixColor (Guadarrama et al. 2017): shapes and gradients, the PixelCNN's causal order
(raster, Cr before Cb), quantisation, seeded sampling, the cached sampler against a full
recompute, overfitting one picture, and the registry's files. Tiny networks on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vidcolor.models.pixcolor  # noqa: F401  (registers "pixcolor")
from vidcolor.models import automatic
from vidcolor.ops import color
from vidcolor.models.automatic import AutoOptions
from vidcolor.errors import ModelError
from vidcolor.models.pixcolor import (
    CB,
    CR,
    CachedSampler,
    PixColor,
    bin_centres,
    chroma_to_ab,
    grey_level,
    pick_bins,
    quantize,
    rgb_to_chroma,
    sampling_uniforms,
)

TINY = dict(
    input_size=48, size=5, bins=8, condition_width=8, condition_blocks=1, features=8, pixel_channels=8,
    pixel_blocks=2, pixel_kernel=3, first_kernel=3, head_channels=8, refine_width=8, refine_size=32,
)


def tiny(**changes) -> PixColor:
    torch.manual_seed(0)
    return PixColor(PixColor.Config(**{**TINY, **changes})).eval()


def picture(h: int = 24, w: int = 32, seed: int = 0) -> torch.Tensor:
    """A smooth colour picture ``(1, 3, h, w)``: a red-to-blue ramp, a green disc."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([x / w, 0.3 + 0.2 * y / h, 1 - x / w], 0)
    disc = (x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(h, w) / 4) ** 2
    rgb[:, disc] = np.array([0.1, 0.8, 0.2], np.float32)[:, None]
    rgb += rng.normal(0, 0.02, rgb.shape).astype(np.float32)
    return torch.from_numpy(rgb.clip(0, 1))[None]


def lightness_of(rgb: torch.Tensor) -> torch.Tensor:
    return color.rgb_to_lab(rgb)[:, :1]


def pixelcnn_inputs(model: PixColor, batch: int = 2, dtype=torch.float32):
    """Random chroma ``(B, 2, S, S)`` and conditioning terms of random features."""
    g = torch.Generator().manual_seed(1)
    s, f = model.config.size, model.config.features
    chroma = torch.rand(batch, 2, s, s, generator=g, dtype=dtype)
    terms = model.pixelcnn.conditioning_terms(torch.randn(batch, f, s, s, generator=g, dtype=dtype))
    return chroma, terms


# -- shapes and gradients -----------------------------------------------------------------


def test_training_losses_backward_gives_finite_gradients_to_every_weight():
    model = tiny().train()
    losses = model.training_losses(picture(24, 32).expand(2, -1, -1, -1))
    assert set(losses) == {"loss", "pixelcnn", "refinement"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert torch.allclose(losses["loss"], losses["pixelcnn"] + losses["refinement"])
    losses["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_shapes_of_logits_samples_and_colorizations():
    model = tiny()
    chroma, terms = pixelcnn_inputs(model)
    assert model.pixelcnn(chroma, terms).shape == (2, 8, 2, 5, 5)
    lightness = lightness_of(picture(20, 36).expand(2, -1, -1, -1))
    samples = model.colorize_samples(lightness, AutoOptions(), count=3)
    assert samples.shape == (3, 2, 2, 20, 36) and torch.isfinite(samples).all()
    assert model.colorize(lightness, AutoOptions()).shape == (2, 2, 20, 36)


# -- causality ----------------------------------------------------------------------------


def test_pixelcnn_logits_depend_only_on_earlier_pixels_and_cb_on_own_cr():
    """Perturb each colour value in turn: a logit at pixel p for channel d may change only
    when the perturbed value is at an earlier pixel, or is p's own Cr and d is Cb."""
    model = tiny()
    chroma, terms = pixelcnn_inputs(model)
    s = model.config.size
    with torch.no_grad():
        base = model.pixelcnn(chroma, terms)
        for q in range(s * s):
            for c in (CR, CB):
                changed = chroma.clone()
                changed[:, c, q // s, q % s] = 1.0 - changed[:, c, q // s, q % s]
                moved = (model.pixelcnn(changed, terms) != base).any(0).any(0)  # (2, S, S)
                for p in range(s * s):
                    for d in (CR, CB):
                        allowed = q < p or (q == p and c == CR and d == CB)
                        if not allowed:
                            assert not moved[d, p // s, p % s], (q, c, p, d)
                assert moved[CB, q // s, q % s] == (c == CR)  # Cb sees its own pixel's Cr
                if q % s + 1 < s:
                    assert moved[:, q // s, q % s + 1].all()  # the next pixel in the row sees it


def test_perturbing_the_row_above_changes_the_logits_below():
    model = tiny()
    chroma, terms = pixelcnn_inputs(model)
    changed = chroma.clone()
    changed[:, :, 1, 2] = 1.0 - changed[:, :, 1, 2]
    with torch.no_grad():
        before, after = model.pixelcnn(chroma, terms), model.pixelcnn(changed, terms)
    assert not torch.equal(before[:, :, :, 2, 2], after[:, :, :, 2, 2])
    assert torch.equal(before[:, :, :, :1], after[:, :, :, :1])  # row 0 is unaffected


# -- colour and quantisation -------------------------------------------------------------------


def test_bin_centres_quantize_back_to_their_bins():
    for bins in (8, 32):
        index = torch.arange(bins)
        assert torch.equal(quantize(bin_centres(index, bins), bins), index)
    edges = quantize(torch.tensor([0.0, 1 / 32 - 1e-6, 1 / 32, 0.999, 1.0]), 32)
    assert edges.tolist() == [0, 0, 1, 31, 31]


def test_chroma_of_a_picture_in_unit_range_and_back_to_its_ab():
    rgb = picture()
    chroma = rgb_to_chroma(rgb)
    assert chroma.min() >= 0 and chroma.max() <= 1
    luma = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]
    ab = chroma_to_ab(luma, chroma)
    assert torch.allclose(ab, color.rgb_to_lab(rgb)[:, 1:], atol=0.05)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # Cr (channel 0) is high for red
    assert rgb_to_chroma(red)[0, CR] > 0.9 and rgb_to_chroma(red)[0, CB] < 0.5


def test_grey_level_is_the_grey_with_that_lightness():
    grey = torch.linspace(0, 1, 11).view(1, 1, 1, 11)
    lightness = color.rgb_to_lab(grey.expand(1, 3, 1, 11))[:, :1]
    assert torch.allclose(grey_level(lightness), grey, atol=1e-4)


# -- sampling -------------------------------------------------------------------------------


def test_pick_bins_inverts_the_cumulative_distribution():
    logits = torch.log(torch.tensor([[0.25, 0.25, 0.5]])).expand(4, -1)
    picked = pick_bins(logits, torch.tensor([0.1, 0.3, 0.6, 0.9999999]))
    assert picked.tolist() == [0, 1, 2, 2]


def test_sampling_is_deterministic_for_a_seed_and_differs_between_seeds():
    model = tiny()
    lightness = lightness_of(picture())
    first = model.colorize_samples(lightness, AutoOptions(seed=5), count=2)
    again = model.colorize_samples(lightness, AutoOptions(seed=5), count=2)
    other = model.colorize_samples(lightness, AutoOptions(seed=6), count=2)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other, atol=1.0)
    assert not torch.allclose(first[0], first[1], atol=1.0)  # two samples, two colorizations
    assert torch.equal(model.colorize(lightness, AutoOptions(seed=5)), first[0])


def test_sample_k_does_not_depend_on_the_count():
    model = tiny()
    lightness = lightness_of(torch.cat([picture(seed=0), picture(seed=1)]))
    three = model.sample_bins(lightness, seed=2, count=3)
    one = model.sample_bins(lightness, seed=2, count=1)
    two = model.sample_bins(lightness, seed=2, count=2)
    assert torch.equal(three[0], one[0]) and torch.equal(three[:2], two)
    assert torch.equal(sampling_uniforms(2, 3, (4,))[:1], sampling_uniforms(2, 1, (4,)))
    ab_three = model.colorize_samples(lightness, AutoOptions(seed=2), count=3)
    ab_one = model.colorize_samples(lightness, AutoOptions(seed=2), count=1)
    assert torch.allclose(ab_three[0], ab_one[0], atol=1e-3)


def full_recompute_sample(model: PixColor, terms: list[torch.Tensor], uniforms: torch.Tensor) -> torch.Tensor:
    """The plain sampler: the whole PixelCNN run again for every colour value drawn."""
    n, s, bins = terms[0].shape[0], model.config.size, model.config.bins
    chroma = torch.zeros(n, 2, s, s, dtype=terms[0].dtype)
    index = torch.zeros(n, 2, s, s, dtype=torch.long)
    with torch.no_grad():
        for i in range(s):
            for j in range(s):
                for c in (CR, CB):
                    logits = model.pixelcnn(chroma, terms)[:, :, c, i, j]
                    index[:, c, i, j] = pick_bins(logits, uniforms[:, i, j, c])
                    chroma[:, c, i, j] = bin_centres(index[:, c, i, j], bins).to(chroma.dtype)
    return index


@pytest.mark.parametrize("kernels", [(3, 3), (5, 3)])
def test_cached_sampler_matches_full_recompute(kernels):
    model = tiny(pixel_kernel=kernels[0], first_kernel=kernels[1], pixel_blocks=3).double()
    with torch.no_grad():  # peaked distributions: any error in the cached activations changes the draws
        model.pixelcnn.logits.weight.mul_(30.0)
    _, terms = pixelcnn_inputs(model, batch=3, dtype=torch.float64)
    uniforms = sampling_uniforms(4, 1, (3, 5, 5, 2))[0].double()
    fast = model.pixelcnn.sample(terms, uniforms)
    assert torch.equal(fast, full_recompute_sample(model, terms, uniforms))
    assert len(fast.unique()) > 2


def test_cached_logits_equal_the_full_network_under_teacher_forcing():
    """Fed a fixed chroma image value by value, the cache gives at every step the logits the
    whole network gives for that image (which, by causality, see only the earlier values)."""
    model = tiny(pixel_kernel=5, first_kernel=3, pixel_blocks=3).double()
    chroma, terms = pixelcnn_inputs(model, batch=2, dtype=torch.float64)
    bins, s = model.config.bins, model.config.size
    index = quantize(chroma, bins)
    with torch.no_grad():
        full = model.pixelcnn(bin_centres(index, bins).double(), terms)
        sampler = CachedSampler(model.pixelcnn, terms)
        for i in range(s):
            for j in range(s):
                for c in (CR, CB):
                    cached = sampler.logits_at(i, j)[:, :, c]
                    assert torch.allclose(cached, full[:, :, c, i, j], rtol=0, atol=1e-12), (i, j, c)
                    sampler.set(i, j, c, index[:, c, i, j])
            sampler.finish_row(i)
    assert torch.equal(sampler.drawn, index)


# -- training ------------------------------------------------------------------------------


def test_losses_fall_when_overfitting_one_picture():
    model = tiny().train()
    rgb = picture(24, 24)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(50):
        losses = model.training_losses(rgb, torch.Generator().manual_seed(0))
        first = first or {k: v.item() for k, v in losses.items()}
        optimiser.zero_grad()
        losses["loss"].backward()
        optimiser.step()
    with torch.no_grad():
        last = {k: v.item() for k, v in model.training_losses(rgb).items()}
    assert last["loss"] < 0.5 * first["loss"]
    assert last["pixelcnn"] < 0.5 * first["pixelcnn"]
    assert last["refinement"] < first["refinement"]


def test_refinement_starts_at_bilinear_upsampling_of_the_low_chroma():
    model = tiny()
    low = torch.rand(1, 2, 5, 5)
    refined = model.refinement(torch.rand(1, 1, 16, 24), low)
    expected = torch.nn.functional.interpolate(low, size=(16, 24), mode="bilinear", align_corners=False)
    assert torch.allclose(refined, expected)


# -- registry and files ----------------------------------------------------------------------


def test_create_builds_it_and_save_load_round_trips(tmp_path):
    model = automatic.create("pixcolor", **TINY)
    assert isinstance(model, PixColor) and model.config.size == 5 and "pixcolor" in automatic.names()
    path = tmp_path / "pixcolor.safetensors"
    automatic.save(model, path)
    loaded = automatic.load(path, name="pixcolor")
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    lightness = lightness_of(picture())
    options = AutoOptions(seed=1)
    assert torch.equal(model.eval().colorize(lightness, options), loaded.colorize(lightness, options))


def test_settings_the_layers_cannot_use_are_refused():
    with pytest.raises(ModelError):
        PixColor(PixColor.Config(**{**TINY, "pixel_channels": 7}))
    with pytest.raises(ModelError):
        PixColor(PixColor.Config(**{**TINY, "pixel_kernel": 4}))
    with pytest.raises(ModelError):
        automatic.create("pixcolor", no_such_setting=1)
