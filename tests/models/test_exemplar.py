"""The exemplar network: backbones, correspondence, the U-Net, losses, checkpoints, and an
overfitting run that proves the whole data flow learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import assert_clean_error, read_clip, run_cli, scene, torchvision_vgg19_state, write_clip, write_png
from vidcolor.models.exemplar import backbones
from vidcolor.ops import color
from vidcolor.models.exemplar import correspondence as corr
from vidcolor.errors import ModelError
from vidcolor.models.exemplar.network import ColorizationNet, ExemplarConfig, ExemplarNet, load, save
from vidcolor.train.losses import ALPHA, chrominance_loss, exemplar_losses, perceptual_loss
from vidcolor.eval.metrics import psnr

SMALL = ExemplarConfig(width=8)


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0


def pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A target and a reference of the same scene: shifted crops, the reference mirrored."""
    big = scene(seed)
    return tensor(big[4:68, 4:68]), tensor(big[12:76, 10:74][:, ::-1])


# -- backbones -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", backbones.names())
def test_backbones_give_a_five_level_pyramid(name):
    net = backbones.create(name).eval()
    with torch.no_grad():
        levels = net(torch.rand(2, 1, 48, 80))
    assert [tuple(f.shape) for f in levels] == [
        (2, c, 48 // 2**i, 80 // 2**i) for i, c in enumerate(net.channels)
    ]


def test_unknown_backbone_is_refused():
    with pytest.raises(ModelError, match="unknown backbone"):
        backbones.create("resnet")


def test_gray_vgg_folds_conv1_1_over_rgb():
    net = backbones.create("vgg19_gray").eval()
    grey = torch.rand(1, 1, 32, 40)
    with torch.no_grad():
        folded = net(grey)
        replicated = net(grey.expand(-1, 3, -1, -1))
    # identical away from the border, where zero padding of the normalised RGB differs
    assert torch.allclose(folded[0][..., 1:-1, 1:-1], replicated[0][..., 1:-1, 1:-1], atol=1e-4)
    assert not torch.allclose(folded[0], replicated[0], atol=1e-4)


def test_torchvision_vgg19_weights_load_by_index(tmp_path):
    state = torchvision_vgg19_state()
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    net = backbones.load_torchvision_vgg19(path)
    assert torch.equal(backbones.load(path).features[2].weight, state["features.2.weight"])
    assert torch.equal(net.features[0].weight, state["features.0.weight"])
    assert torch.equal(net.features[28].weight, state["features.28.weight"])  # conv5_1
    assert isinstance(net.features[28], torch.nn.Conv2d) and len(net.features) == 30


def test_a_file_that_is_not_vgg19_is_refused(tmp_path):
    state = torchvision_vgg19_state()
    del state["features.10.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ModelError, match="features.10.weight"):
        backbones.load_torchvision_vgg19(tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable"):
        backbones.load_torchvision_vgg19(tmp_path / "junk.pth")


# -- correspondence ----------------------------------------------------------------------------


def translated_pyramid(shift: tuple[int, int], size=(64, 96), channels=16, seed=0):
    """Random smooth feature pyramids of a target and of the target moved by ``shift`` pixels
    (dx, dy): the reference at p + shift shows the target at p."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    dx, dy = shift
    big = torch.randn(1, channels, h + 2 * abs(dy) + 16, w + 2 * abs(dx) + 16, generator=g)
    big = torch.nn.functional.avg_pool2d(big, 3, 1, 1)
    oy, ox = abs(dy) + 8, abs(dx) + 8
    target = big[..., oy : oy + h, ox : ox + w]
    reference = big[..., oy - dy : oy - dy + h, ox - dx : ox - dx + w]

    def pyramid(x):
        return [x if i == 0 else torch.nn.functional.avg_pool2d(x, 2**i) for i in range(5)]

    return pyramid(target), pyramid(reference)


def test_correspondence_recovers_a_translation():
    dx, dy = 16, -8  # a whole step of every level but the last: the pyramids move exactly
    target, reference = translated_pyramid((dx, dy))
    ab = torch.randn(1, 2, 64, 96)
    found = corr.correspond(target, reference, ab, (64, 96))
    pixels = corr.to_pixels(found.forward, 64, 96)[0]
    ys, xs = torch.meshgrid(torch.arange(64), torch.arange(96), indexing="ij")
    inner = (slice(16, -16), slice(16, -16))
    assert torch.equal(pixels[..., 0][inner], (xs + dx)[inner])
    assert torch.equal(pixels[..., 1][inner], (ys + dy)[inner])
    # R'_ab carries the reference colour at the matched place; the cycle comes home
    assert torch.allclose(found.warped_ab[0][:, 16:-16, 16:-16], ab[0][:, 16 + dy : 64 - 16 + dy, 16 + dx : 96 - 16 + dx], atol=1e-4)
    home = corr.to_pixels(found.cycle, 64, 96)[0]
    assert torch.equal(home[..., 0][inner], xs[inner]) and torch.equal(home[..., 1][inner], ys[inner])
    assert found.similarity.shape == (1, 10, 64, 96)
    exact_levels = [0, 1, 2, 3, 5, 6, 7, 8]  # level 5 (stride 16) is not moved by a whole step
    # (away from where the bilinear up-sampling of the coarse maps reaches out-of-view matches)
    assert (found.similarity[0, exact_levels, 16:-16, 24:-24] > 0.99).all()


@pytest.mark.parametrize("shift", [(5, -3), (-7, 6)])
def test_refinement_with_propagation_finds_sub_cell_shifts(shift):
    """Shifts that are not whole steps of the coarse levels: global matching is off by a
    cell, the coarse-to-fine windows and propagation bring nearly every match home."""
    target, reference = translated_pyramid(shift)
    found = corr.correspond(target, reference, torch.zeros(1, 2, 64, 96), (64, 96))
    pixels = corr.to_pixels(found.forward, 64, 96)[0]
    ys, xs = torch.meshgrid(torch.arange(64), torch.arange(96), indexing="ij")
    exact = (pixels[..., 0] == xs + shift[0]) & (pixels[..., 1] == ys + shift[1])
    assert exact[16:-16, 16:-16].float().mean() > 0.95


def test_similarity_maps_fall_where_the_reference_differs():
    target, reference = translated_pyramid((0, 0))
    reference = [r.clone() for r in reference]
    for i, r in enumerate(reference):  # replace the right half of the reference
        half = r.shape[-1] // 2
        r[..., half:] = torch.randn_like(r[..., half:])
    found = corr.correspond(target, reference, torch.zeros(1, 2, 64, 96), (64, 96))
    left, right = found.similarity[0, :, 8:-8, 4:40], found.similarity[0, :, 8:-8, 56:-4]
    assert left[0].mean() > 0.99 and right[0].mean() < left[0].mean() - 0.2


def test_fake_reference_is_the_ground_truth_through_the_cycle():
    target, reference = translated_pyramid((-16, 8))
    found = corr.correspond(target, reference, torch.zeros(1, 2, 64, 96), (64, 96))
    truth = torch.randn(1, 2, 64, 96)
    fake = found.fake_reference(truth)
    assert torch.allclose(fake[..., 16:-16, 16:-16], truth[..., 16:-16, 16:-16], atol=1e-4)
    assert not torch.allclose(fake, truth, atol=1e-4)  # out-of-view matches do not come home


# -- the colorization sub-net ------------------------------------------------------------------


def test_unet_shapes_blocks_and_bounds():
    net = ColorizationNet(width=8).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 13, 48, 72) * 3)
    assert out.shape == (2, 2, 48, 72) and out.abs().max() <= 1.0
    dilations = [m.dilation[0] for m in net.block5 if isinstance(m, torch.nn.Conv2d)]
    assert dilations == [2, 2, 2]
    strides = [net.block2[0].stride[0], net.block3[0].stride[0], net.block4[0].stride[0]]
    assert strides == [2, 2, 2]
    assert net.block4[0].out_channels == 64 and net.block1[0].in_channels == 13
    norms = [isinstance(getattr(net, f"block{i}")[-1], torch.nn.BatchNorm2d) for i in range(1, 11)]
    assert norms == [True] * 9 + [False]


def test_unet_skips_carry_fine_detail():
    """Block 1 reaches the output through the 1-10 skip: a one-pixel change moves the output
    near that pixel more than the coarse path alone could explain."""
    torch.manual_seed(0)
    net = ColorizationNet(width=8).eval()
    x = torch.randn(1, 13, 32, 32)
    y = x.clone()
    y[0, 0, 16, 16] += 5.0
    with torch.no_grad():
        delta = (net(y) - net(x)).abs()[0].sum(0)
    assert delta[16, 16] > 0 and delta[16, 16] >= delta[0:4, 0:4].max()


def test_exemplar_net_runs_both_sub_nets():
    torch.manual_seed(0)
    net = ExemplarNet(SMALL).eval()
    target, ref = pair(0)
    lightness = color.rgb_to_lab(target[None])[:, :1]
    with torch.no_grad():
        prepared = net.prepare(ref[None])
        found = net.similarity(lightness.expand(3, -1, -1, -1), prepared)
        ab = net(lightness.expand(3, -1, -1, -1), prepared)
    assert found.warped_ab.shape == (3, 2, 64, 64) and found.similarity.shape == (3, 10, 64, 64)
    assert ab.shape == (3, 2, 64, 64) and ab.abs().max() <= color.AB_SCALE


# -- losses ------------------------------------------------------------------------------------


def test_chrominance_loss_is_smooth_l1():
    target = torch.zeros(1, 2, 1, 2)
    predicted = torch.tensor([0.5, 3.0, -0.5, -3.0]).view(1, 2, 1, 2)
    expected = (0.125 + 2.5 + 0.125 + 2.5) / 4
    assert chrominance_loss(predicted, target).item() == pytest.approx(expected)


def test_perceptual_loss_sees_colour_not_identity():
    backbone = backbones.create("compact").eval()
    rgb = tensor(scene(1))[None]
    assert perceptual_loss(backbone, rgb, rgb).item() == 0.0
    lab = color.rgb_to_lab(rgb)
    shifted = color.lab_to_rgb(torch.cat((lab[:, :1], lab[:, 1:] + 40.0), 1))
    assert perceptual_loss(backbone, shifted, rgb).item() > 0.0


def test_two_branch_batch_trains_only_the_colorization_net():
    torch.manual_seed(0)
    net = ExemplarNet(SMALL).train()
    pairs = [pair(s) for s in range(4)]
    targets = torch.stack([p[0] for p in pairs])
    refs = torch.stack([p[1] for p in pairs])
    losses = exemplar_losses(net, targets, refs)
    assert losses.total.item() == pytest.approx(losses.chrominance.item() + ALPHA * losses.perceptual.item(), rel=1e-5)
    losses.total.backward()
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.colorizer.parameters() if p.requires_grad)


def test_the_network_learns_reference_colours():
    """Overfitting a handful of pairs: the colorized targets come out far closer to the
    originals than grey does, from the real warped reference at inference."""
    torch.manual_seed(0)
    net = ExemplarNet(ExemplarConfig(width=16))
    pairs = [pair(s) for s in range(4)]
    targets = torch.stack([p[0] for p in pairs])
    refs = torch.stack([p[1] for p in pairs])
    lab = color.rgb_to_lab(targets)
    lightness = lab[:, :1]
    with torch.no_grad():
        found = net.similarity(lightness, net.prepare(refs))
    optimiser = torch.optim.Adam(net.colorizer.parameters(), lr=2e-3)
    first = None
    for _ in range(250):
        losses = exemplar_losses(net.train(), targets, refs, found=found)
        optimiser.zero_grad()
        losses.total.backward()
        optimiser.step()
        first = first or losses.chrominance.item()
    assert losses.chrominance.item() < first / 5
    net.eval()
    with torch.no_grad():
        ab = net.colorize(lightness, found.warped_ab, found.similarity)
    model = psnr(to_uint8(color.lab_to_rgb(torch.cat((lightness, ab), 1))), to_uint8(targets))
    grey = psnr(to_uint8(color.lab_to_rgb(torch.cat((lightness, torch.zeros_like(ab)), 1))), to_uint8(targets))
    assert model > grey + 2.0, (model, grey)


# -- checkpoints and the command line ----------------------------------------------------------


def test_checkpoints_round_trip(tmp_path):
    torch.manual_seed(0)
    net = ExemplarNet(SMALL).eval()
    for m in net.colorizer.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / "exemplar.safetensors"
    save(net, path, {"steps": 7})
    loaded = load(path)
    assert loaded.config == SMALL
    target, ref = pair(2)
    lightness = color.rgb_to_lab(target[None])[:, :1]
    with torch.no_grad():
        assert torch.equal(net(lightness, net.prepare(ref[None])), loaded(lightness, loaded.prepare(ref[None])))


def test_a_wrong_checkpoint_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"model": "eccv16"})
    with pytest.raises(ModelError, match="eccv16"):
        load(tmp_path / "other.safetensors")
    net = ExemplarNet(SMALL)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    state.pop("colorizer.out.weight")
    save_file(state, str(tmp_path / "short.safetensors"), metadata={"model": "exemplar", "config": '{"width": 8}'})
    with pytest.raises(ModelError, match="colorizer.out.weight"):
        load(tmp_path / "short.safetensors")


def test_cli_colours_a_film_with_the_exemplar_network(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "exemplar.safetensors"
    save(ExemplarNet(SMALL).eval(), weights)
    clip = write_clip(tmp_path / "grey.mp4", frames=12, audio="aac")
    ref = write_png(tmp_path / "ref.png", scene(3, 96)[:64])
    out = tmp_path / "out.mp4"
    run = run_cli(clip, "-r", ref, "-o", out, "--model", "exemplar", "--weights", weights, "--work-res", "48", "-q")
    assert run.code == 0, run.output
    produced, source = read_clip(out), read_clip(clip, pixels=False)
    assert produced.frames == 12 and produced.times == source.times
    assert produced.audio == source.audio


def test_cli_without_exemplar_weights_fails_cleanly(tmp_path, monkeypatch, reference):
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(tmp_path / "none"))
    clip = write_clip(tmp_path / "grey.mp4", frames=4)
    run = run_cli(clip, "-r", reference, "--model", "exemplar")
    assert_clean_error(run, "exemplar", "--weights")
    run = run_cli(clip, "-r", reference, "--model", "transfer", "--weights", tmp_path / "w.safetensors")
    assert_clean_error(run, "no trained weights")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_agrees_with_the_cpu(tmp_path):
    from vidcolor.colorizers import create

    torch.manual_seed(0)
    weights = tmp_path / "exemplar.safetensors"
    save(ExemplarNet(ExemplarConfig(width=16)).eval(), weights)
    target, ref = pair(4)
    lightness = color.rgb_to_lab(target[None])[:, :1].expand(4, -1, -1, -1).contiguous()
    results = []
    for device in ("cpu", "cuda"):
        model = create("exemplar", device=device, weights=weights)
        with torch.no_grad():
            results.append(model.colorize(lightness.to(device), model.prepare(ref[None])).float().cpu())
    difference = (results[0] - results[1]).abs()
    assert difference.mean() < 2.0 and difference.quantile(0.95) < 6.0  # ab units; bf16 may flip a few matches


def test_previous_frame_guides_where_it_matches_better():
    torch.manual_seed(0)
    net = ExemplarNet(SMALL).eval()
    target, ref = pair(5)
    lightness = color.rgb_to_lab(target[None])[:, :1]
    with torch.no_grad():
        prepared = net.prepare(ref[None])
        alone = net(lightness, prepared)
        assert torch.equal(net(lightness, prepared, prepared), alone)  # no better match: unchanged
        remembered = torch.randn(1, 2, 64, 64) * 30
        previous = net.prepare_lab(lightness, remembered)  # the same frame: it matches itself best
        near = net.similarity(lightness, previous)
        expected = net.colorize(lightness, near.warped_ab, near.similarity)
        assert torch.allclose(net(lightness, prepared, previous), expected, atol=1e-5)
        assert not torch.allclose(expected, alone, atol=1e-3)


def test_engine_follows_frames_of_a_sequence_only(tmp_path):
    from conftest import colour_reference, moving_grey
    from vidcolor.film.engine import Engine

    torch.manual_seed(0)
    weights = tmp_path / "exemplar.safetensors"
    save(ExemplarNet(SMALL).eval(), weights)
    engine = Engine("exemplar", device="cpu", work_res=48, weights=weights, follow=True)
    greys = [moving_grey(i, 72, 48) for i in range(4)]
    prepared = engine.prepare(colour_reference(72, 48))
    photos = [engine.colorize(greys[2:], prepared) for _ in range(2)]
    assert np.array_equal(photos[0], photos[1])
    engine.colorize(greys[:2], prepared, sequence=True)
    followed = engine.colorize(greys[2:], prepared, sequence=True)
    assert not np.array_equal(followed, photos[0])
    fresh = Engine("exemplar", device="cpu", work_res=48, weights=weights)  # off unless asked
    fresh.colorizer.tracker = None  # (tracking, tested on its own, also changes a sequence's frames)
    assert np.array_equal(fresh.colorize(greys[2:], fresh.prepare(colour_reference(72, 48)), sequence=True), photos[0])


def test_backbone_files_round_trip_and_come_out_of_exemplar_checkpoints(tmp_path):
    torch.manual_seed(0)
    net = ExemplarNet(SMALL).eval()
    save(net, tmp_path / "exemplar.safetensors")
    backbones.save(net.backbone, tmp_path / "backbone.safetensors")
    image = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        expected = net.backbone(image)[-1]
        for name in ("exemplar.safetensors", "backbone.safetensors"):
            assert torch.equal(backbones.load(tmp_path / name)(image)[-1], expected)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"model": "siggraph17"})
    with pytest.raises(ModelError, match="siggraph17"):
        backbones.load(tmp_path / "other.safetensors")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "bad.safetensors"), metadata={"model": "backbone", "backbone": "compact"})
    with pytest.raises(ModelError, match="missing"):
        backbones.load(tmp_path / "bad.safetensors")
