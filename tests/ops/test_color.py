"""Colour science: Lab conversions, grey levels <-> lightness, guided upsampling, work sizes."""

from __future__ import annotations

import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcolor.ops import color


def test_rgb_lab_rgb_round_trip():
    rgb = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    lab = color.rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    assert float(lab[:, 0].min()) >= 0.0 and float(lab[:, 0].max()) <= 100.0
    back = color.lab_to_rgb(lab)
    torch.testing.assert_close(back, rgb, atol=1e-4, rtol=0)


def test_rgb_to_lab_known_values():
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    lab = color.rgb_to_lab(rgb)[0, :, 0].T
    torch.testing.assert_close(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(lab[1], torch.tensor([0.0, 0.0, 0.0]), atol=0.05, rtol=0)
    # sRGB red: L 53.2, a 80.1, b 67.2 (D65)
    torch.testing.assert_close(lab[2], torch.tensor([53.24, 80.09, 67.20]), atol=0.1, rtol=0)


def test_normalisation_round_trips():
    lightness = torch.linspace(0, 100, 11)
    ab = torch.linspace(-110, 110, 11)
    torch.testing.assert_close(color.denormalize_l(color.normalize_l(lightness)), lightness)
    torch.testing.assert_close(color.denormalize_ab(color.normalize_ab(ab)), ab)
    assert float(color.normalize_l(torch.tensor(50.0))) == 0.0
    assert float(color.normalize_ab(torch.tensor(110.0))) == 1.0


def _kornia_grey_lightness(levels: np.ndarray, max_level: int) -> torch.Tensor:
    grey = torch.from_numpy(levels.astype(np.float64) / max_level).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    return kornia.color.rgb_to_lab(grey)[0, 0, 0].float()


def test_grey_to_lightness_uint8_matches_kornia():
    levels = np.arange(256, dtype=np.uint8)
    ours = color.grey_to_lightness(levels)
    assert ours.shape == (256,)
    torch.testing.assert_close(ours, _kornia_grey_lightness(levels, 255), atol=1e-4, rtol=0)
    assert bool((ours[1:] > ours[:-1]).all()), "lightness must increase with the grey level"


def test_grey_to_lightness_uint16_matches_kornia():
    rng = np.random.default_rng(1)
    levels = np.concatenate([[0, 1, 257, 32768, 65534, 65535], rng.integers(0, 65536, 200)]).astype(np.uint16)
    ours = color.grey_to_lightness(levels.reshape(2, -1)).reshape(-1)
    torch.testing.assert_close(ours, _kornia_grey_lightness(levels, 65535), atol=1e-3, rtol=0)
    # a 16-bit level 257*k is the same grey as the 8-bit level k
    k = np.arange(0, 256, 5)
    torch.testing.assert_close(
        color.grey_to_lightness((k * 257).astype(np.uint16)), color.grey_to_lightness(k.astype(np.uint8)), atol=1e-3, rtol=0
    )


def test_grey_to_lightness_keeps_shape():
    grey = np.random.default_rng(2).integers(0, 256, (3, 5, 7)).astype(np.uint8)
    out = color.grey_to_lightness(grey)
    assert out.shape == (3, 5, 7)
    assert float(out[0, 0, 0]) == pytest.approx(float(color.grey_to_lightness(grey[0, 0, 0:1])[0]))


def test_lightness_to_grey_levels_inverts_grey_to_lightness():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    back = color.lightness_to_grey_levels(color.grey_to_lightness(levels))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, levels)
    # values between two levels go to the nearer one; out of range values are clamped
    table = color.grey_to_lightness(np.arange(256, dtype=np.uint8))
    nearly_ten = table[10] + 0.2 * (table[11] - table[10])
    assert color.lightness_to_grey_levels(torch.stack([nearly_ten]))[0] == 10
    assert color.lightness_to_grey_levels(torch.tensor([-5.0, 150.0])).tolist() == [0, 255]


def test_rgb_to_grey_levels_keeps_lightness():
    rgb = np.random.default_rng(3).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    grey = color.rgb_to_grey_levels(rgb)
    assert grey.shape == (20, 30) and grey.dtype == np.uint8
    lab = color.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)[0, 0]
    step = float(torch.diff(color.grey_to_lightness(np.arange(256, dtype=np.uint8))).max())
    assert float((color.grey_to_lightness(grey) - lab).abs().max()) <= step / 2 + 1e-3


def test_compose_rgb_keeps_lightness_and_colour():
    lightness = torch.full((1, 1, 4, 4), 60.0)
    ab = torch.zeros(1, 2, 4, 4)
    ab[:, 0] = 30.0
    rgb = color.compose_rgb(lightness, ab)
    assert rgb.shape == (1, 4, 4, 3) and rgb.dtype == torch.uint8
    lab = color.rgb_to_lab(rgb.permute(0, 3, 1, 2).float() / 255.0)
    torch.testing.assert_close(lab[:, 0], lightness[:, 0], atol=0.5, rtol=0)
    torch.testing.assert_close(lab[:, 1], ab[:, 0], atol=1.0, rtol=0)
    assert rgb[0, 0, 0, 0] > rgb[0, 0, 0, 1], "positive a is red-ward"


def test_guided_upsample_of_constant_ab_is_constant():
    g = torch.Generator().manual_seed(4)
    lightness_full = torch.rand(2, 1, 40, 56, generator=g) * 100
    lightness_low = color.resize(lightness_full, (10, 14))
    ab_low = torch.empty(2, 2, 10, 14)
    ab_low[:, 0], ab_low[:, 1] = 12.5, -31.0
    out = color.guided_upsample(ab_low, lightness_low, lightness_full)
    assert out.shape == (2, 2, 40, 56)
    torch.testing.assert_close(out[:, 0], torch.full((2, 40, 56), 12.5), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[:, 1], torch.full((2, 40, 56), -31.0), atol=1e-3, rtol=0)


def test_guided_upsample_keeps_colour_edge_on_the_luminance_edge():
    """A dark/bright edge at x=37 (not on the 4x low-res grid). Colour that follows the
    luminance at low resolution must come back with its edge exactly at x=37 at full
    resolution, where plain bilinear upsampling smears it over several pixels."""
    h, w, edge = 48, 96, 37
    lightness_full = torch.full((1, 1, h, w), 30.0)
    lightness_full[..., edge:] = 80.0
    lightness_low = F.interpolate(lightness_full, size=(12, 24), mode="area")
    ab_low = ((lightness_low - 55.0) / 25.0 * 40.0).expand(1, 2, 12, 24).contiguous()
    ideal = torch.where(lightness_full > 55.0, 40.0, -40.0).expand(1, 2, h, w)

    guided = color.guided_upsample(ab_low, lightness_low, lightness_full)
    bilinear = F.interpolate(ab_low, size=(h, w), mode="bilinear", align_corners=False)

    row_g, row_b = guided[0, 0, h // 2], bilinear[0, 0, h // 2]
    # the colour edge is where the luminance edge is: sign flips between x=36 and x=37
    assert float(row_g[edge - 1]) < -30 and float(row_g[edge]) > 30
    # bilinear is blurred across it: the pixels next to the edge are far from +-40
    assert abs(float(row_b[edge - 1])) < 20 or abs(float(row_b[edge])) < 20
    near = slice(edge - 4, edge + 4)
    err_g = float((guided - ideal)[..., near].abs().mean())
    err_b = float((bilinear - ideal)[..., near].abs().mean())
    assert err_g < 4.0
    assert err_g < err_b / 4


def test_resize_down_and_up():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    down = color.resize(x, (2, 2))
    torch.testing.assert_close(down, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert color.resize(x, (4, 4)) is x
    assert color.resize(x, (8, 6)).shape == (1, 1, 8, 6)


@pytest.mark.parametrize(
    "height,width,short_side,expected",
    [
        (1080, 1920, 256, (256, 456)),  # 1920*256/1080 = 455.1 -> 456
        (1920, 1080, 256, (456, 256)),  # portrait: short side is the width
        (64, 96, 256, (64, 96)),  # never upscaled
        (49, 65, 256, (48, 64)),  # multiples of 8
        (48, 64, 32, (32, 40)),  # 64*32/48 = 42.7 -> 40
        (5, 3, 256, (8, 8)),  # at least 8
    ],
)
def test_work_size_rules(height, width, short_side, expected):
    assert color.work_size(height, width, short_side) == expected


def test_work_size_properties():
    for h, w in [(720, 1280), (480, 640), (1080, 1440), (333, 777), (96, 160)]:
        for short in (32, 64, 128, 256):
            wh, ww = color.work_size(h, w, short)
            assert wh % 8 == 0 and ww % 8 == 0
            assert min(wh, ww) <= max(short, 8) + 4
            assert wh <= h + 4 and ww <= w + 4
            assert abs(ww / wh - w / h) < 0.15 * w / h


def test_is_grey():
    grey = np.repeat(np.random.default_rng(5).integers(0, 256, (30, 40, 1)).astype(np.uint8), 3, axis=2)
    assert color.is_grey(grey)
    tinted = grey.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 1, 0, 255)  # chroma far below 5
    assert color.is_grey(tinted)
    one_red = grey.copy()
    one_red[10, 10] = (220, 30, 30)
    assert not color.is_grey(one_red)
    assert not color.is_grey(one_red, max_chroma=5.0)
    assert color.is_grey(one_red, max_chroma=200.0)


def test_is_grey_on_large_image_samples_without_missing_colour_regions():
    image = np.full((600, 800, 3), 128, np.uint8)
    assert color.is_grey(image)
    image[200:260, 300:380] = (30, 90, 220)
    assert not color.is_grey(image)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_engine_on_cuda_matches_cpu():
    from conftest import colour_reference, moving_grey
    from vidcolor.film.engine import Engine

    grey = [moving_grey(i, 96, 64) for i in range(3)]
    reference = colour_reference()
    outputs = []
    for device in ("cpu", "cuda"):
        engine = Engine("transfer", device=device, work_res=64)
        outputs.append(engine.colorize(grey, engine.prepare(reference)).astype(int))
    assert outputs[0].shape == outputs[1].shape == (3, 64, 96, 3)
    assert np.abs(outputs[0] - outputs[1]).mean() < 2.0


def test_transfer_pca_is_exact_and_independent_of_the_random_state():
    from conftest import colour_reference
    from vidcolor.colorizers.transfer import ColorTransfer, principal_axes

    g = torch.Generator().manual_seed(3)
    samples = torch.randn(500, 12, generator=g) * torch.linspace(5, 0.1, 12)
    centred = samples - samples.mean(0)
    axes = principal_axes(centred, 4)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    # the same subspace as the exact SVD, axis by axis up to sign
    assert torch.allclose((axes.T @ vh[:4].T).abs(), torch.eye(4), atol=1e-4)

    reference = torch.from_numpy(colour_reference()).permute(2, 0, 1)[None].float() / 255
    model = ColorTransfer()
    bases = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        bases.append(model.prepare(reference).basis)
    assert torch.equal(bases[0], bases[1])
