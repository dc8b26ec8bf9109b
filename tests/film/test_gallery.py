"""References picked from a gallery by recommendation: ``--auto-reference`` and a folder of
references with the exemplar network."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import torch

from conftest import assert_clean_error, read_clip, run_cli, scene, write_frames_clip, write_png
from vidcolor.models.exemplar.network import ExemplarConfig, ExemplarNet, save

SMALL = ExemplarConfig(width=8)


@pytest.fixture
def film_and_gallery(tmp_path):
    """A two-shot grey film of scenes 11 and 12, a gallery holding colour views of both among
    other scenes, and small exemplar weights."""
    shots = [scene(11, 96), scene(12, 96)]
    frames = []
    for picture in shots:
        grey = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)
        frames += [np.repeat(np.roll(grey, k, axis=1)[16:80, :, None], 3, axis=2) for k in range(10)]
    film = write_frames_clip(tmp_path / "film.mp4", frames)
    gallery = tmp_path / "gallery"
    for seed in (13, 14, 15):
        write_png(gallery / f"other_{seed}.png", scene(seed, 96)[10:74])
    write_png(gallery / "view_11.png", shots[0][12:76, 4:])
    write_png(gallery / "view_12.png", shots[1][14:78, 2:])
    torch.manual_seed(0)
    weights = tmp_path / "exemplar.safetensors"
    save(ExemplarNet(SMALL).eval(), weights)
    return film, gallery, weights


def chosen(stderr: str) -> list[str]:
    return re.findall(r"reference (\S+\.png)", stderr)


def test_auto_reference_picks_each_shot_from_the_gallery(tmp_path, film_and_gallery):
    film, gallery, weights = film_and_gallery
    out = tmp_path / "out.mp4"
    run = run_cli(film, "--auto-reference", "--gallery", gallery, "--model", "exemplar", "--weights", weights,
                  "--work-res", "48", "-o", out)
    assert run.code == 0, run.output
    assert chosen(run.stderr) == ["view_11.png", "view_12.png"]
    assert read_clip(out, pixels=False).frames == 20
    assert (gallery / ".vidcolor-gallery.npz").is_file()


def test_a_reference_folder_is_searched_as_a_gallery_by_the_exemplar_network(tmp_path, film_and_gallery, monkeypatch):
    film, gallery, weights = film_and_gallery
    monkeypatch.setenv("VIDCOLOR_GALLERY", str(tmp_path / "elsewhere"))
    run = run_cli(film, "-r", gallery, "--model", "exemplar", "--weights", weights, "--work-res", "48",
                  "-o", tmp_path / "out.mp4")
    assert run.code == 0, run.output
    assert chosen(run.stderr) == ["view_11.png", "view_12.png"]


def test_auto_reference_takes_the_gallery_from_the_environment(tmp_path, film_and_gallery, monkeypatch):
    film, gallery, weights = film_and_gallery
    monkeypatch.setenv("VIDCOLOR_GALLERY", str(gallery))
    photo = write_png(tmp_path / "photo.png", cv2.cvtColor(scene(12, 96), cv2.COLOR_RGB2GRAY))
    run = run_cli(photo, "--auto-reference", "--model", "exemplar", "--weights", weights, "--work-res", "48",
                  "-o", tmp_path / "photo_color.png")
    assert run.code == 0, run.output
    assert (tmp_path / "photo_color.png").is_file()


def test_auto_reference_errors(tmp_path, film_and_gallery, monkeypatch, reference):
    film, gallery, _ = film_and_gallery
    monkeypatch.delenv("VIDCOLOR_GALLERY", raising=False)
    assert_clean_error(run_cli(film, "--auto-reference"), "--gallery")
    assert_clean_error(run_cli(film, "--auto-reference", "--gallery", gallery, "-r", reference), "leave out --reference")
    assert_clean_error(run_cli(film, "--auto-reference", "--gallery", tmp_path / "missing"), "gallery")
