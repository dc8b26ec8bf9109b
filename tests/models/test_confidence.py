"""The exemplar network's confidence: calibrated from its similarity maps, stored in its file,
blending its colour with the prior's, and reported per shot beside a film."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vidcolor
from conftest import read_clip, run_cli, scene, write_frames_clip, write_png
from vidcolor.colorizers import best_automatic, create
from vidcolor.models.exemplar.network import ExemplarConfig, ExemplarNet, load, save
from vidcolor.ops import color

SMALL = ExemplarConfig(width=8)
LEVELS = 10


def lightness_of(rgb: np.ndarray) -> torch.Tensor:
    return color.rgb_to_lab(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255)[:, :1]


def reference_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255


def calibrated(tmp_path, bias: float, name: str = "exemplar.safetensors"):
    torch.manual_seed(0)
    net = ExemplarNet(SMALL).eval()
    net.set_confidence(torch.full((LEVELS,), 0.0), torch.tensor(bias))
    save(net, tmp_path / name)
    return tmp_path / name


@torch.no_grad()
def test_the_confidence_is_stored_with_the_network(tmp_path):
    plain = ExemplarNet(SMALL).eval()
    lightness = lightness_of(scene(1, 64))
    assert plain.predict(lightness, plain.prepare(reference_tensor(scene(1, 64))))[1] is None
    path = tmp_path / "n.safetensors"
    net = ExemplarNet(SMALL).eval()
    net.set_confidence(torch.linspace(-1, 1, LEVELS), torch.tensor(0.3))
    save(net, path)
    loaded = load(path)
    assert loaded.config.confidence
    prepared = loaded.prepare(reference_tensor(scene(2, 64)))
    ab, confidence = loaded.predict(lightness, prepared)
    assert confidence.shape == (1, 1, 64, 64) and 0 <= float(confidence.min()) <= float(confidence.max()) <= 1
    torch.testing.assert_close(confidence, net.predict(lightness, net.prepare(reference_tensor(scene(2, 64))))[1])


@torch.no_grad()
def test_untrusted_colour_gives_way_to_the_prior_and_trusted_colour_is_kept(tmp_path):
    lightness = lightness_of(scene(3, 64))
    reference = reference_tensor(scene(4, 64))
    trusting = create("exemplar", weights=calibrated(tmp_path, 30.0, "t.safetensors"))
    doubting = create("exemplar", weights=calibrated(tmp_path, -30.0, "d.safetensors"))
    network = trusting.net
    own = network(lightness, network.prepare(reference))
    torch.testing.assert_close(trusting.colorize(lightness, trusting.prepare(reference)), own)
    assert float(trusting.confidence[0]) > 0.99
    prior = create(best_automatic())
    half = prior.colorize(color.resize(lightness, (32, 32)), None)  # the fallback runs at half size
    expected = torch.nn.functional.interpolate(half, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(doubting.colorize(lightness, doubting.prepare(reference)), expected, atol=1e-3, rtol=0)
    assert float(doubting.confidence[0]) < 0.01
    no_prior = create("exemplar", weights=calibrated(tmp_path, -30.0, "d.safetensors"), prior=None)
    assert float(color.chroma(no_prior.colorize(lightness, no_prior.prepare(reference))).max()) < 0.01


@torch.no_grad()
def test_the_shipped_network_trusts_a_fitting_reference_more_than_an_unrelated_one():
    colorizer = create("exemplar")
    assert colorizer.net.config.confidence
    own, other = [], []
    for seed in range(3):
        target = scene(seed, 96)
        lightness = lightness_of(target)
        colorizer.colorize(lightness, colorizer.prepare(reference_tensor(target)))
        own.append(float(colorizer.confidence[0]))
        colorizer.colorize(lightness, colorizer.prepare(reference_tensor(scene(seed + 10, 96)[::-1].copy())))
        other.append(float(colorizer.confidence[0]))
    assert min(own) > max(other), (own, other)


def test_each_shot_s_confidence_goes_into_the_report(tmp_path):
    shot_a = [np.roll(scene(5, 96)[:64], 2 * i, axis=1) for i in range(10)]
    shot_b = [np.roll(scene(6, 96)[:64], 2 * i, axis=0) for i in range(10)]
    film = write_frames_clip(tmp_path / "film.mp4", [color.rgb_to_grey_levels(f) for f in shot_a + shot_b])
    reference = write_png(tmp_path / "ref.png", shot_a[0])
    out = tmp_path / "film_color.mp4"
    run = run_cli(film, "-r", reference, "--model", "exemplar", "--work-res", "64", "--report", "-o", out)
    assert run.code == 0, run.output
    assert read_clip(out, pixels=False).frames == 20
    report = json.loads((tmp_path / "film_color.report.json").read_text())
    assert report["model"] == "exemplar" and report["frames"] == 20
    shots = report["shots"]
    assert [s["start_frame"] for s in shots] == [0, 10] and sum(s["frames"] for s in shots) == 20
    assert all(s["reference"] == "ref.png" for s in shots)
    assert shots[0]["confidence"] > shots[1]["confidence"]  # the reference is shot 0's own colour
    assert run.stderr.count("confidence") >= 2


def test_a_report_needs_a_film(tmp_path):
    photo = write_png(tmp_path / "p.png", scene(1, 64))
    with pytest.raises(vidcolor.InputError, match="report"):
        vidcolor.colorize(photo, reference=photo, report=True)
