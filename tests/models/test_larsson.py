"""The hue/chroma hypercolumn colorizer of Larsson et al. 2016 (vidcolor.models.larsson)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vidcolor.models.larsson as larsson
from vidcolor.models import automatic
from vidcolor.models.automatic import AutoOptions
from vidcolor.ops.color import rgb_to_lab

K = 32
TINY = dict(width=4, fc=16, hidden=16)


def tiny_net(seed: int = 0) -> larsson.LarssonNet:
    torch.manual_seed(seed)
    return larsson.LarssonNet(larsson.LarssonNet.Config(**TINY))


def one_hot(index: int, bins: int = K) -> torch.Tensor:
    probs = torch.zeros(1, bins, 1, 1)
    probs[0, index] = 1.0
    return probs


def circular_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def coloured_image(height: int = 32, width: int = 32) -> torch.Tensor:
    """sRGB (1, 3, H, W): a red square on blue over green, with a lightness gradient."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    img[: height // 2] = (0.25, 0.35, 0.85)
    img[height // 2 :] = (0.25, 0.65, 0.25)
    img[height // 4 : height * 3 // 4, width // 4 : width // 2] = (0.85, 0.2, 0.15)
    img *= (0.7 + 0.3 * x / width)[..., None]
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()


def test_forward_shapes_and_gradients_reach_the_trunk():
    net = tiny_net()
    lightness = torch.rand(2, 1, 64, 32) * 100
    hue, chroma = net(lightness)
    assert hue.shape == chroma.shape == (2, K, 16, 8)

    losses = net.training_losses(coloured_image(40, 36).expand(2, -1, -1, -1), generator=torch.Generator().manual_seed(1))
    assert set(losses) == {"hue", "chroma", "loss"}
    losses["loss"].backward()
    for layer in (net.stages[0][0][0], net.stages[4][2][0], net.fc6, net.fc7, net.h_fc1, net.hue, net.chroma):
        grad = layer.weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_sampled_training_loss_is_reproducible_with_a_generator():
    net = tiny_net()
    rgb = coloured_image()
    first = net.training_losses(rgb, generator=torch.Generator().manual_seed(3))["loss"]
    again = net.training_losses(rgb, generator=torch.Generator().manual_seed(3))["loss"]
    other = net.training_losses(rgb, generator=torch.Generator().manual_seed(4))["loss"]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_hypercolumn_equals_the_concatenated_interpolated_layers():
    """The per-layer projection of h_fc1 is the paper's concatenated hypercolumn at 1/4."""
    net = tiny_net().eval()
    lightness = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        features = net.features(lightness)
        assert [f.shape[1] for f in features] == net.taps
        size = (16, 16)
        column = torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in features], 1)
        expected = net.h_fc1(column)
        got = net.hypercolumn(features, larsson.cell_grid(64, 64, 4))
    assert torch.allclose(got, expected, atol=1e-4)


def test_paper_widths_give_the_12417_channel_hypercolumn():
    config = larsson.LarssonNet.Config(width=64, fc=4096, hidden=1024)
    taps = [1] + [m * config.width for stage in larsson.VGG16_STAGES for m in stage] + [config.fc, config.fc]
    assert sum(taps) == 12417


def test_colorize_any_size():
    net = tiny_net().eval()
    lightness = torch.linspace(5, 95, 37 * 45).view(1, 1, 37, 45)
    ab = net.colorize(lightness, AutoOptions())
    assert ab.shape == (1, 2, 37, 45)
    assert torch.isfinite(ab).all()


@pytest.mark.parametrize("rgb", [(0.8, 0.3, 0.2), (0.2, 0.6, 0.3), (0.3, 0.4, 0.9), (0.7, 0.2, 0.6)])
def test_hue_chroma_binning_round_trip(rgb):
    pixel = torch.tensor(rgb).view(1, 3, 1, 1)
    hue, chroma = larsson.hue_chroma(pixel)
    assert chroma.item() == pytest.approx(max(rgb) - min(rgb), abs=1e-6)

    decoded_hue, magnitude = larsson.hue_expectation(one_hot(larsson.hue_bins(hue, K).item()))
    decoded_chroma = larsson.chroma_median(one_hot(larsson.chroma_bins(chroma, K).item()))
    assert circular_distance(decoded_hue.item(), hue.item()) <= 0.5 / K + 1e-6
    assert abs(decoded_chroma.item() - chroma.item()) <= 0.5 / K + 1e-6
    assert magnitude.item() == pytest.approx(1 / K)

    lightness = rgb_to_lab(pixel)[:, :1]
    rebuilt = larsson.reconstruct_rgb(lightness, decoded_hue, decoded_chroma)
    rebuilt_hue, rebuilt_chroma = larsson.hue_chroma(rebuilt)
    assert circular_distance(rebuilt_hue.item(), hue.item()) < 1 / K
    assert abs(rebuilt_chroma.item() - chroma.item()) < 1 / K


def test_hue_expectation_is_circular():
    probs = torch.zeros(1, K, 1, 1)
    probs[0, K - 1] = 0.5  # centre 0.984
    probs[0, 0] = 0.5  # centre 0.016
    hue, _ = larsson.hue_expectation(probs)
    assert circular_distance(hue.item(), 0.0) < 1e-4
    naive = (probs[0, :, 0, 0] * larsson.bin_centres(K)).sum().item()
    assert naive == pytest.approx(0.5)  # what a linear expectation would say

    probs[0, K - 1], probs[0, 0] = 0.75, 0.25
    hue, _ = larsson.hue_expectation(probs)
    assert 0.99 < hue.item() < 1.0


def test_chroma_median():
    uniform = torch.full((1, K, 1, 1), 1 / K)
    assert larsson.chroma_median(uniform).item() == pytest.approx(0.5, abs=1e-5)
    assert larsson.chroma_median(one_hot(7)).item() == pytest.approx(7.5 / K)
    # a mode at zero chroma does not drag the median down as it does the expectation
    probs = torch.zeros(1, K, 1, 1)
    probs[0, 0], probs[0, 20] = 0.4, 0.6
    assert larsson.chroma_median(probs).item() > 20 / K
    assert (probs[0, :, 0, 0] * larsson.bin_centres(K)).sum().item() < 0.4


def test_chromatic_fading():
    chroma = torch.full((1, 1, 1, 1), 0.6)
    _, flat = larsson.hue_expectation(torch.full((1, K, 1, 1), 1 / K))
    assert flat.item() < 1e-6
    assert larsson.chromatic_fading(chroma, flat).item() < 1e-4

    _, peaked = larsson.hue_expectation(one_hot(12))
    assert larsson.chromatic_fading(chroma, peaked).item() == pytest.approx(0.6)

    spread = torch.zeros(1, K, 1, 1)
    spread[0, 0], spread[0, K // 2] = 0.6, 0.4  # opposite hues: |z| = 0.2 / K
    _, half = larsson.hue_expectation(spread)
    assert larsson.chromatic_fading(chroma, half).item() == pytest.approx(0.6 * 0.2 / K / 0.03, rel=1e-4)


def test_reconstruction_keeps_the_grey_level():
    generator = torch.Generator().manual_seed(0)
    lightness = 40 + 20 * torch.rand(1, 1, 8, 8, generator=generator)
    hue = torch.rand(1, 1, 8, 8, generator=generator)
    chroma = 0.3 * torch.rand(1, 1, 8, 8, generator=generator)
    rgb = larsson.reconstruct_rgb(lightness, hue, chroma)
    grey = larsson.lightness_to_grey(lightness)
    assert torch.allclose(rgb.mean(1, keepdim=True), grey, atol=1e-5)
    rebuilt_hue, rebuilt_chroma = larsson.hue_chroma(rgb)
    assert torch.allclose(rebuilt_chroma, chroma, atol=1e-5)
    assert max(circular_distance(a, b) for a, b in zip(rebuilt_hue.flatten().tolist(), hue.flatten().tolist())) < 1e-4


def test_histogram_transfer_moves_the_mean_towards_the_target():
    generator = torch.Generator().manual_seed(0)
    centre = torch.randint(2, 11, (1, 1, 24, 24), generator=generator).float()
    k = torch.arange(K).view(1, K, 1, 1).float()
    probs = 0.8 * torch.softmax(-((k - centre) ** 2) / 4, 1) + 0.2 / K  # predictions around bins 2-10
    target = torch.softmax(-((torch.arange(K).float() - 20) ** 2) / 8, 0)[None]  # reference around bin 20
    log_probs = probs.log()

    bias = larsson.histogram_transfer(probs, target)
    posterior = larsson.apply_bias(log_probs, bias)
    before = larsson.kl_divergence(target, larsson.mean_histogram(probs)).item()
    after = larsson.kl_divergence(target, larsson.mean_histogram(posterior)).item()
    assert after < before / 20
    assert torch.allclose(posterior.sum(1), torch.ones(1, 24, 24))
    zero = torch.zeros_like(bias)
    assert larsson.transfer_energy(log_probs, bias, target) < larsson.transfer_energy(log_probs, zero, target)


def test_global_hint_pulls_the_hue_histogram_towards_the_reference():
    net = tiny_net().eval()
    lightness = rgb_to_lab(coloured_image())[:, :1]
    reference = torch.zeros(1, 3, 16, 16)
    reference[:, 1] = 0.8  # saturated green
    reference[:, 0] = 0.2
    target_hue, _ = larsson.reference_histograms(reference, K)
    with torch.no_grad():
        hue, chroma = net.histograms(lightness)
        hinted_hue, hinted_chroma = net.histograms(lightness, reference)
    weights = larsson.chroma_median(chroma)
    before = larsson.kl_divergence(target_hue, larsson.mean_histogram(hue, weights)).item()
    hinted_weights = larsson.chroma_median(hinted_chroma)
    after = larsson.kl_divergence(target_hue, larsson.mean_histogram(hinted_hue, hinted_weights)).item()
    assert after < before / 5


@pytest.mark.parametrize("colour", [(0.2, 0.8, 0.2), (0.85, 0.15, 0.1)])
def test_global_hint_colours_the_output_like_the_reference(colour):
    """Even an untrained network paints a single-colour reference's colour through eq. 5."""
    net = tiny_net().eval()
    lightness = rgb_to_lab(coloured_image())[:, :1]
    reference = torch.tensor(colour).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    ab = net.colorize(lightness, AutoOptions(global_hint=reference))
    assert ab.shape == (1, 2, 32, 32) and torch.isfinite(ab).all()
    got, want = ab.mean((2, 3))[0], rgb_to_lab(reference)[0, 1:, 0, 0]
    angle = torch.atan2(got[1], got[0]) - torch.atan2(want[1], want[0])
    assert abs(math.remainder(angle.item(), 2 * math.pi)) < math.radians(20)
    assert got.norm() > 0.5 * want.norm()
    plain = net.colorize(lightness, AutoOptions()).mean((2, 3))[0]
    assert (plain - want).norm() > 2 * (got - want).norm()


def test_loss_falls_when_overfitting_one_image():
    net = tiny_net().train()
    rgb = coloured_image()
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        optimiser.zero_grad()
        loss = net.training_losses(rgb, samples=None)["loss"]
        loss.backward()
        optimiser.step()
        history.append(loss.item())
    assert history[-1] < 0.5 * history[0]


def test_registry_create_save_and_load(tmp_path):
    net = automatic.create("larsson", **TINY)
    assert isinstance(net, larsson.LarssonNet)
    assert net.config == larsson.LarssonNet.Config(**TINY)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net.eval()
    path = tmp_path / "larsson.safetensors"
    automatic.save(net, path)
    loaded = automatic.load(path, name="larsson")
    assert isinstance(loaded, larsson.LarssonNet) and loaded.config == net.config
    lightness = torch.linspace(10, 90, 24 * 40).view(1, 1, 24, 40)
    assert torch.equal(loaded.colorize(lightness, AutoOptions()), net.colorize(lightness, AutoOptions()))
