"""The shipped weights: the manifest matches the files, the default exemplar network loads
without --weights and colours a picture from a reference, every shipped automatic network
colours a photo without --weights, and a changed file is caught."""

from __future__ import annotations

import json
import shutil

import numpy as np

from conftest import assert_clean_error, colour_reference, lightness_diff, mean_chroma, read_rgb_image, run_cli, write_png
from vidcolor.ops import color
from vidcolor.models import weights
from vidcolor import colorizers
from vidcolor.film.engine import Engine
from vidcolor.eval.metrics import psnr


def test_every_shipped_file_matches_its_manifest_entry():
    entries = weights.manifest()
    assert {e["name"] for e in entries} >= {"exemplar"}
    for entry in entries:
        assert weights.verify(entry) is None
        assert weights.default_weights(entry["name"]) == weights.weights_dir() / entry["file"]


def test_the_default_exemplar_network_colours_from_a_reference():
    """No --weights: the shipped network, given the colour original as its reference, puts
    back much of the colour of a shifted copy (the keyframe setting)."""
    original = colour_reference(128, 96)
    target = np.roll(original, (3, 5), axis=(0, 1))
    engine = Engine("exemplar", device="cpu", work_res=96)
    grey = color.rgb_to_grey_levels(target)
    out = engine.colorize([grey], engine.prepare(original))[0]
    flat = np.repeat(grey[..., None], 3, axis=2)
    assert psnr(out, target) > psnr(flat, target) + 6.0  # measured: 20.5 dB against 11.5


def test_every_shipped_automatic_network_colours_a_photo_without_weights(tmp_path):
    """No --weights: each automatic network in the manifest loads its shipped file and adds
    colour to a grey photo, keeping its lightness."""
    shipped = [e["name"] for e in weights.manifest() if e["name"] in colorizers.names(automatic=True)]
    assert set(shipped) >= {"eccv16", "siggraph17", "larsson"}
    grey = color.rgb_to_grey_levels(colour_reference(96, 64))
    photo = write_png(tmp_path / "grey.png", grey)
    for name in shipped:
        out = tmp_path / f"{name}.png"
        run = run_cli(photo, "--auto", "--model", name, "-o", out, "-q")
        assert run.code == 0, (name, run.output)
        rgb = read_rgb_image(out)
        assert mean_chroma(rgb) > 2.0, name
        assert lightness_diff(rgb, grey) < 0.5, name


def test_weights_commands_list_verify_and_catch_a_changed_file(tmp_path, monkeypatch):
    run = run_cli("weights", "list")
    assert run.code == 0 and "exemplar" in run.stdout and "ok" in run.stdout
    assert run_cli("weights", "verify").code == 0

    copy = tmp_path / "weights"
    shutil.copytree(weights.weights_dir(), copy)
    data = bytearray((copy / "exemplar.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "exemplar.safetensors").write_bytes(bytes(data))
    monkeypatch.setenv("VIDCOLOR_WEIGHTS", str(copy))
    assert "sha256" in run_cli("weights", "list").stdout
    assert_clean_error(run_cli("weights", "verify"), "sha256", "manifest")

    (copy / "MANIFEST.json").write_text(json.dumps({"files": []}))
    assert_clean_error(run_cli("weights", "list"), "not a weights manifest")
