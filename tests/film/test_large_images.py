"""Large photos: the full-size stages go a band of rows at a time, give the colours of the
whole picture at once, and keep the memory of a large photo small."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import torch

from conftest import colour_reference, moving_colour, moving_grey, read_rgb_image, subprocess_env, write_png
from vidcolor.ops import color
from vidcolor.film.engine import Engine


def _spy_lightness(monkeypatch) -> list[int]:
    """Record the size of every grey array turned into L."""
    sizes: list[int] = []
    real = color.grey_to_lightness

    def spy(grey, device="cpu"):
        sizes.append(int(np.prod(grey.shape)))
        return real(grey, device)

    monkeypatch.setattr(color, "grey_to_lightness", spy)
    return sizes


def test_bands_give_the_colours_of_the_whole_picture(monkeypatch):
    """A tall picture (and a batch of two) coloured seven rows at a time equals the picture
    coloured whole, to one level, and no full-size L is ever made."""
    width, height = 120, 900
    greys = [moving_grey(2, width, height), moving_grey(9, width, height)]
    engine = Engine("transfer", device="cpu", work_res=48)
    prepared = engine.prepare(colour_reference())
    whole = engine.colorize(greys, prepared).astype(int)
    whole16 = engine.colorize(greys[:1], prepared, out=np.empty((1, height, width, 3), np.uint16)).astype(int)

    monkeypatch.setattr(color, "BAND_PIXELS", width * 7)

    monkeypatch.setattr(color, "WHOLE_PIXELS", 0)
    sizes = _spy_lightness(monkeypatch)
    banded = engine.colorize(greys, prepared).astype(int)
    assert len(sizes) > 2 * height // 7 and max(sizes) <= 2 * width * 7  # bands of both frames
    deep = np.empty((1, height, width, 6), np.uint16)[..., ::2]  # any strides will do
    banded16 = engine.colorize(greys[:1], prepared, out=deep).astype(int)

    for a, b in ((whole, banded), (whole16, banded16)):
        difference = np.abs(a - b)
        assert difference.max() <= 1
        assert (difference > 0).mean() < 1e-3
    assert np.abs(whole16 / 257 - whole[:1]).max() <= 1  # the same colours at 16 bits


def test_resizing_in_rows_is_the_area_resize(monkeypatch):
    """Each output row averaged from its own input rows is exactly the area resize."""
    monkeypatch.setattr(color, "BAND_PIXELS", 50)
    monkeypatch.setattr(color, "WHOLE_PIXELS", 0)
    image = torch.rand(2, 3, 203, 157)
    loaded: list[int] = []

    def rows(top: int, bottom: int) -> torch.Tensor:
        loaded.append(bottom - top)
        return image[:, :, top:bottom]

    small = color.resize_in_rows(rows, (203, 157), (64, 48))
    assert torch.equal(small, color.resize(image, (64, 48)))
    assert len(loaded) == 64 and max(loaded) <= 5


def test_colour_to_grey_in_bands_is_exact(monkeypatch):
    rgb = moving_colour(4, 150, 311)
    whole = color.rgb_to_grey_levels(rgb)
    monkeypatch.setattr(color, "BAND_PIXELS", 150 * 4)
    monkeypatch.setattr(color, "WHOLE_PIXELS", 0)
    assert np.array_equal(color.rgb_to_grey_levels(rgb), whole)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    assert np.array_equal(color.rgb_to_grey_levels(bgr[..., ::-1]), whole)  # a reversed view
    deep = rgb.astype(np.uint16) * 257
    assert np.abs(color.rgb_to_grey_levels(deep).astype(int) - whole.astype(int) * 257).max() <= 257


def test_a_large_photo_needs_little_memory(tmp_path):
    """A 4000x3000 grey photo is coloured in well under 1 GB (it took 2.5 GB whole)."""
    grey = cv2.resize(moving_grey(0, 400, 300), (4000, 3000), interpolation=cv2.INTER_LINEAR)
    src = write_png(tmp_path / "large.png", grey)
    ref = write_png(tmp_path / "ref.png", colour_reference(192, 128))
    out = tmp_path / "large_color.png"
    measure = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    command = [sys.executable, "-c", measure, sys.executable, "-m", "vidcolor", src, "-r", ref, "-o", out, "-q",
               "--device", "cpu"]
    proc = subprocess.run(list(map(str, command)), capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    peak_mb = int(proc.stdout.split()[-1]) / 1024
    assert peak_mb < 1024, f"peak {peak_mb:.0f} MB"
    assert read_rgb_image(out).shape == (3000, 4000, 3)
