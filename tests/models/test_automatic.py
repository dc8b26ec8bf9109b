"""The automatic networks of Zhang et al. (eccv16, siggraph17): layouts, forward and
backward, hints, palettes, the import of the authors' released weights, and the command
line with --auto on photos and films."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import (assert_clean_error, colour_reference, lightness_diff, moving_grey, read_clip, read_rgb_image,
                      run_cli, write_clip, write_png)
from vidcolor.models import automatic, weights
from vidcolor.ops import quantize
from vidcolor.models.automatic import AutoOptions, Hint
from vidcolor.models.official import RELEASES, import_release
from vidcolor.models.siggraph17 import parse_hints, place_hints, simulate_hints, weighted_kmeans

# The authors' layouts, as their released files hold them: a few keys with their shapes, the
# number of tensors (BatchNorm counters aside) and of parameters.
AUTHORS = {
    "eccv16": (75, 32_236_011, {"model1.0.weight": (64, 1, 3, 3), "model1.4.running_var": (64,),
                                "model3.6.weight": (256,), "model5.0.weight": (512, 512, 3, 3),
                                "model8.0.weight": (512, 256, 4, 4), "model8.6.weight": (313, 256, 1, 1),
                                "model_out.weight": (2, 313, 1, 1)}),
    "siggraph17": (98, 34_187_027, {"model1.0.weight": (64, 4, 3, 3), "model8up.0.weight": (512, 256, 4, 4),
                                    "model8.1.weight": (256, 256, 3, 3), "model8.5.running_mean": (256,),
                                    "model9.3.weight": (128,), "model10.1.weight": (128, 128, 3, 3),
                                    "model3short8.0.weight": (256, 256, 3, 3), "model1short10.0.weight": (128, 64, 3, 3),
                                    "model_class.0.weight": (529, 256, 1, 1), "model_out.0.weight": (2, 128, 1, 1)}),
}


def release_like(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the authors' keys and shapes, random values, no BatchNorm counters."""
    g = torch.Generator().manual_seed(seed)
    layout = automatic.create(name, **RELEASES[name].config).state_dict()
    state = {}
    for key, value in layout.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=g) * (0.05 if value.dim() > 1 else 0.1)
    return state


@pytest.mark.parametrize("name", ["eccv16", "siggraph17"])
def test_layouts_are_the_authors(name):
    count, params, keys = AUTHORS[name]
    state = release_like(name)
    assert len(state) == count
    assert sum(v.numel() for k, v in state.items() if "running" not in k) == params
    for key, shape in keys.items():
        assert tuple(state[key].shape) == shape, key


@pytest.mark.parametrize("name, config", [("eccv16", {"width": 8}), ("siggraph17", {"width": 8, "global_hints": True})])
def test_forward_and_backward_at_small_size(name, config):
    torch.manual_seed(0)
    net = automatic.create(name, **config)
    rgb = torch.rand(2, 3, 36, 44)  # not a multiple of 8: padded inside
    losses = net.training_losses(rgb, *([torch.Generator().manual_seed(0)] if name == "siggraph17" else []))
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    first = net.model1[0].weight.grad
    assert first is not None and first.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        ab = net.colorize(torch.rand(2, 1, 36, 44) * 100, AutoOptions())
    assert ab.shape == (2, 2, 36, 44) and torch.isfinite(ab).all()


def test_eccv16_decodes_its_own_distribution():
    torch.manual_seed(0)
    net = automatic.create("eccv16", width=8).eval()
    lightness = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        probs = net.distribution(lightness)
        outs = {m: net.colorize(lightness, AutoOptions(decode=m, temperature=0.38)) for m in quantize.DECODES}
    assert probs.shape == (1, 313, 8, 8) and torch.allclose(probs.sum(1), torch.ones(1, 8, 8))
    expected = F.interpolate(quantize.decode(probs, "mean"), size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(outs["mean"], expected, atol=1e-4)
    # the annealed mean lies between the mean and the mode, and is more saturated than the mean
    assert outs["annealed"].norm(dim=1).mean() > outs["mean"].norm(dim=1).mean()


def test_eccv16_decodes_at_the_temperature_stored_with_its_weights(tmp_path):
    """The annealed mean's T is the config's (tuned on validation data, train/tune_decoding.py),
    saved and loaded with the weights; an explicit ``temperature`` still wins."""
    torch.manual_seed(0)
    net = automatic.create("eccv16", width=8, temperature=0.7).eval()
    path = tmp_path / "eccv16.safetensors"
    automatic.save(net, path)
    loaded = automatic.load(path)
    assert loaded.config.temperature == 0.7
    lightness = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        probs = loaded.distribution(lightness)
        by_default = loaded.colorize(lightness, AutoOptions())
        asked = loaded.colorize(lightness, AutoOptions(temperature=0.38))
    expected = F.interpolate(quantize.decode(probs, "annealed", 0.7), size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(by_default, expected, atol=1e-4)
    assert not torch.allclose(asked, by_default, atol=1e-2)
    assert automatic.create("eccv16", width=8).config.temperature == quantize.TEMPERATURE  # the paper's, unless tuned


def test_eccv16_class_rebalancing_changes_the_loss():
    torch.manual_seed(0)
    net = automatic.create("eccv16", width=8)
    rgb = torch.rand(1, 3, 32, 32)
    plain = net.training_losses(rgb)["loss"]
    w = torch.full((313,), 2.0)
    assert torch.isclose(net.training_losses(rgb, w)["loss"], 2 * plain)


def test_hints_are_placed_as_squares_at_their_points():
    hints = [Hint(0.25, 0.5, (30.0, -20.0), 3 / 40), Hint(0.0, 0.0, (-10.0, 5.0), 0.0)]
    ab, mask = place_hints(hints, 40, 80)
    # the first: centre pixel (20, 20), a 3x3 square
    assert mask[0, 0].sum() == 9 + 1
    assert torch.equal(mask[0, 0, 19:22, 19:22], torch.ones(3, 3))
    assert torch.equal(ab[0, :, 20, 20], torch.tensor([30.0, -20.0]))
    # the second: one pixel in the corner
    assert mask[0, 0, 0, 0] == 1 and torch.equal(ab[0, :, 0, 0], torch.tensor([-10.0, 5.0]))
    assert (ab[0, :, mask[0, 0] == 0] == 0).all()


def test_hints_file_in_pixels_fractions_hex_and_ab(tmp_path):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps([{"x": 10, "y": 20, "color": "#ff0000", "size": 5},
                                {"x": 0.5, "y": 0.25, "ab": [12, -34]}]))
    red, other = parse_hints(path, 100, 50)
    assert (red.x, red.y) == (10.5 / 100, 20.5 / 50) and red.size == 5 / 50
    assert red.ab[0] > 70 and red.ab[1] > 50  # sRGB red: a 80, b 67
    assert (other.x, other.y, other.ab) == (0.5, 0.25, (12.0, -34.0))
    path.write_text(json.dumps([{"x": 500, "y": 1, "color": "#00ff00"}]))
    with pytest.raises(Exception, match="hint 1"):
        parse_hints(path, 100, 50)


def test_simulated_hints_follow_the_recipe():
    g = torch.Generator().manual_seed(0)
    ab = torch.randn(400, 2, 24, 24) * 20
    hint_ab, mask = simulate_hints(ab, g)
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    assert (hint_ab[mask.expand_as(hint_ab) == 0] == 0).all()
    # a geometric number of points with p = 1/8: a mean of 7, so most pictures get some, some none
    none = int((mask.flatten(1).sum(1) == 0).sum())
    assert 20 < none < 100  # P(0 points) = 1/8 of 400 = 50
    full = int((mask.flatten(1).mean(1) == 1).sum())
    assert full <= 15  # 1% revealed whole


def test_weighted_kmeans_finds_weighted_clusters():
    points = torch.cat((torch.randn(50, 2) + torch.tensor([40.0, 0.0]), torch.randn(50, 2) + torch.tensor([-40.0, 20.0])))
    weights_ = torch.cat((torch.full((50,), 3.0), torch.full((50,), 1.0)))
    centres, shares = weighted_kmeans(points, weights_, k=2)
    assert torch.allclose(shares, torch.tensor([0.75, 0.25]), atol=1e-6)
    assert (centres[0] - torch.tensor([40.0, 0.0])).norm() < 1 and (centres[1] - torch.tensor([-40.0, 20.0])).norm() < 1


def test_global_hints_need_the_branch():
    net = automatic.create("siggraph17", width=8).eval()
    with pytest.raises(Exception, match="global hints"):
        net.colorize(torch.rand(1, 1, 16, 16) * 100, AutoOptions(saturation=0.5))
    branched = automatic.create("siggraph17", width=8, global_hints=True).eval()
    with torch.no_grad():
        a = branched.colorize(torch.rand(1, 1, 16, 16) * 100, AutoOptions(saturation=0.9))
        b = branched.colorize(torch.rand(1, 1, 16, 16) * 100, AutoOptions(saturation=0.1))
    assert not torch.allclose(a, b)


# -- the authors' weights ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["eccv16", "siggraph17"])
def test_import_maps_the_authors_keys_exactly(tmp_path, name):
    state = release_like(name, seed=3)
    source = tmp_path / "theirs.pth"
    torch.save(state, source)
    with pytest.raises(Exception, match="sha256 begins"):
        import_release(name, source, tmp_path / "w")
    installed = import_release(name, source, tmp_path / "w", any_hash=True)
    net = automatic.load(installed, name)
    ours = net.state_dict()
    for key, value in state.items():
        assert torch.equal(ours[key], value), key
    entry = {e["name"]: e for e in weights.manifest(tmp_path / "w")}[name]
    assert weights.verify(entry, tmp_path / "w") is None and entry["source"]["official"] is False


def test_imported_eccv16_reproduces_the_authors_forward(tmp_path):
    """Their forward: softmax of block 8's output, the 1x1 expectation layer, x110, bilinear
    x4. Ours with the default annealed mean (T = 0.38) must give the same."""
    state = release_like("eccv16", seed=4)
    state["model_out.weight"] = (quantize.ab_bins() / 110).T[:, :, None, None].clone()
    torch.save(state, tmp_path / "theirs.pth")
    net = automatic.load(import_release("eccv16", tmp_path / "theirs.pth", tmp_path, any_hash=True), "eccv16")
    lightness = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        x = (lightness - 50) / 100
        for block in (net.model1, net.model2, net.model3, net.model4, net.model5, net.model6, net.model7, net.model8):
            x = block(x)
        theirs = F.interpolate(net.model_out(torch.softmax(x, 1)) * 110, scale_factor=4, mode="bilinear", align_corners=False)
        ours = net.colorize(lightness)
    assert torch.allclose(ours, theirs, atol=1e-3)


def test_wrong_files_are_refused_with_the_reason(tmp_path):
    state = release_like("eccv16")
    broken = dict(state)
    del broken["model4.2.weight"]
    broken["extra.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "a.pth")
    with pytest.raises(Exception, match=r"missing model4\.2\.weight.*unexpected extra\.weight"):
        import_release("eccv16", tmp_path / "a.pth", tmp_path, any_hash=True)
    misshapen = dict(state)
    misshapen["model8.6.weight"] = torch.zeros(312, 256, 1, 1)
    torch.save(misshapen, tmp_path / "b.pth")
    with pytest.raises(Exception, match=r"model8\.6\.weight has shape \(312, 256, 1, 1\)"):
        import_release("eccv16", tmp_path / "b.pth", tmp_path, any_hash=True)
    torch.save(release_like("siggraph17"), tmp_path / "c.pth")
    with pytest.raises(Exception, match="not the authors' eccv16"):
        import_release("eccv16", tmp_path / "c.pth", tmp_path, any_hash=True)
    (tmp_path / "d.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="not a readable PyTorch state dict"):
        import_release("eccv16", tmp_path / "d.pth", tmp_path, any_hash=True)


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def small_weights(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "weights"
    for name, config in (("eccv16", {"width": 8}), ("siggraph17", {"width": 8})):
        automatic.save(automatic.create(name, **config).eval(), folder / f"{name}.safetensors")
    return folder


def test_auto_colours_a_photo_and_a_film_keeping_light_timing_and_audio(tmp_path, small_weights, monkeypatch):
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(small_weights))
    photo = write_png(tmp_path / "grey.png", moving_grey(0, 80, 48))
    run = run_cli(photo, "--auto", "-o", tmp_path / "out.png", "-q")  # siggraph17 chosen: preferred when installed
    assert run.code == 0, run.output
    clip = write_clip(tmp_path / "grey.mp4", frames=10, audio="aac")
    run = run_cli(clip, "--auto", "--model", "siggraph17", "-o", tmp_path / "out.mp4", "--work-res", "48", "-q")
    assert run.code == 0, run.output
    produced, source = read_clip(tmp_path / "out.mp4"), read_clip(clip, pixels=False)
    assert produced.frames == 10 and produced.times == source.times and produced.audio == source.audio


def test_hints_steer_siggraph17_and_are_refused_elsewhere(tmp_path, small_weights):
    photo = write_png(tmp_path / "grey.png", moving_grey(0, 64, 48))
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps([{"x": 0.5, "y": 0.5, "color": "#2050e0", "size": 16}]))
    w = small_weights / "siggraph17.safetensors"
    outs = []
    for extra in ([], ["--hints", hints]):
        out = tmp_path / f"out{len(outs)}.png"
        run = run_cli(photo, "--auto", "--model", "siggraph17", "--weights", w, "-o", out, "--work-res", "48", *extra, "-q")
        assert run.code == 0, run.output
        outs.append(out.read_bytes())
    assert outs[0] != outs[1]
    run = run_cli(photo, "--auto", "--model", "eccv16", "--weights", small_weights / "eccv16.safetensors", "--hints", hints)
    assert_clean_error(run, "--hints", "siggraph17")
    run = run_cli(photo, "-r", write_png(tmp_path / "ref.png", colour_reference()), "--temperature", "0.3")
    assert_clean_error(run, "--temperature", "automatic")


def test_palette_lists_suggested_colours(tmp_path, small_weights):
    photo = write_png(tmp_path / "grey.png", moving_grey(0, 64, 48))
    run = run_cli("palette", photo, "--at", "10,20", "--weights", small_weights / "siggraph17.safetensors", "--top", "5")
    assert run.code == 0, run.output
    rows = [line.split("\t") for line in run.stdout.strip().splitlines()]
    assert 1 <= len(rows) <= 5
    shares = [float(r[0]) for r in rows]
    assert abs(sum(shares) - 1) < 0.01 and shares == sorted(shares, reverse=True)
    assert all(r[1].startswith("#") and len(r[1]) == 7 for r in rows)
    assert_clean_error(run_cli("palette", photo, "--at", "500,2", "--weights", small_weights / "siggraph17.safetensors"), "--at")


def test_auto_without_weights_and_import_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(tmp_path / "installed"))
    photo = write_png(tmp_path / "grey.png", moving_grey(0, 64, 48))
    assert_clean_error(run_cli(photo, "--auto"), "no automatic model has weights", "weights import")
    assert_clean_error(run_cli(photo, "--auto", "--model", "siggraph17"), "no installed weights", "weights import")
    torch.save(release_like("eccv16", seed=5), tmp_path / "theirs.pth")
    assert_clean_error(run_cli("weights", "import", "eccv16", tmp_path / "theirs.pth"), "sha256", "--any-hash")
    run = run_cli("weights", "import", "eccv16", tmp_path / "theirs.pth", "--any-hash")
    assert run.code == 0, run.output
    assert run_cli("weights", "verify").code == 0
    run = run_cli(photo, "--auto", "-o", tmp_path / "out.png", "--work-res", "48", "-q")
    assert run.code == 0, run.output
    grey = moving_grey(0, 64, 48)
    out = read_rgb_image(tmp_path / "out.png")
    assert out.shape == (48, 64, 3) and lightness_diff(out, grey) < 1.0  # colour added, lightness kept


def test_pixcolor_samples_and_larsson_global_hint_from_the_command_line(tmp_path):
    from test_larsson import TINY as LARSSON_TINY
    from test_pixcolor import TINY as PIXCOLOR_TINY

    torch.manual_seed(0)
    automatic.save(automatic.create("pixcolor", **PIXCOLOR_TINY).eval(), tmp_path / "pixcolor.safetensors")
    automatic.save(automatic.create("larsson", **LARSSON_TINY).eval(), tmp_path / "larsson.safetensors")
    photo = write_png(tmp_path / "grey.png", moving_grey(0, 64, 48))
    out = tmp_path / "out.png"
    run = run_cli(photo, "--auto", "--model", "pixcolor", "--weights", tmp_path / "pixcolor.safetensors", "-o", out,
                  "--samples", "3", "--seed", "7", "--work-res", "48", "-q")
    assert run.code == 0, run.output
    samples = [read_rgb_image(tmp_path / f"out_s{k}.png") for k in (1, 2, 3)]
    assert not out.exists() and len({s.tobytes() for s in samples}) == 3  # three different colorizations
    assert all(lightness_diff(s, moving_grey(0, 64, 48)) < 1.0 for s in samples)
    clip = write_clip(tmp_path / "grey.mp4", frames=4)
    assert_clean_error(run_cli(clip, "--auto", "--model", "pixcolor", "--weights", tmp_path / "pixcolor.safetensors",
                               "--samples", "2"), "--samples", "photo")
    # larsson: a green reference as global hint turns the picture green
    green = np.zeros((32, 32, 3), np.uint8)
    green[:] = (40, 200, 60)
    hint = write_png(tmp_path / "green.png", green)
    run = run_cli(photo, "--auto", "--model", "larsson", "--weights", tmp_path / "larsson.safetensors", "-o", out,
                  "--global-hint", hint, "--work-res", "48", "-q")
    assert run.code == 0, run.output
    rgb = read_rgb_image(out).astype(float)
    assert (rgb[..., 1] - rgb[..., [0, 2]].mean(-1)).mean() > 10  # green dominates
    assert_clean_error(run_cli(photo, "--auto", "--model", "larsson", "--weights", tmp_path / "larsson.safetensors",
                               "--samples", "2"), "--samples", "pixcolor")
