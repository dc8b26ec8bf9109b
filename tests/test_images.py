"""Photos and folders of photos: formats, sizes, colour, mirrored trees, resuming, preview."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import (
    assert_clean_error,
    colorize_cli,
    lab_of,
    lightness_diff,
    mean_chroma,
    moving_colour,
    moving_grey,
    partial_files,
    read_rgb_image,
    run_cli,
    write_clip,
    write_png,
)
from vidcolor.color import grey_to_lightness, rgb_to_grey_levels
from vidcolor.preview import ROW_HEIGHT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
MIN_CHROMA = 8.0


def grey_photo(width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    return moving_grey(seed, width, height)


def test_grey_png_to_png(tmp_path, reference):
    grey = grey_photo(97, 61)  # odd sizes are kept too
    src = write_png(tmp_path / "photo.png", grey)
    out = tmp_path / "photo_out.png"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)
    rgb = read_rgb_image(out)
    assert rgb.shape == (61, 97, 3)
    assert mean_chroma(rgb) > MIN_CHROMA
    assert lightness_diff(rgb, grey) < 1.0  # lossless: only the 8-bit rounding of RGB


def test_sixteen_bit_grey_png(tmp_path, reference):
    grey16 = (grey_photo().astype(np.uint16) * 257 + np.random.default_rng(1).integers(0, 200, (64, 96))).astype(np.uint16)
    src = write_png(tmp_path / "deep.png", grey16)
    assert cv2.imread(str(src), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    out = tmp_path / "deep_out.png"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    rgb = read_rgb_image(out)
    assert rgb.shape == (64, 96, 3) and rgb.dtype == np.uint8
    assert mean_chroma(rgb) > MIN_CHROMA
    # the output keeps the 16-bit lightness (to 8-bit output precision)
    assert float((lab_of(rgb)[0] - grey_to_lightness(grey16)).abs().mean()) < 1.0


def test_colour_jpeg_to_jpeg(tmp_path, reference):
    photo = moving_colour(3, 96, 64)
    src = tmp_path / "colour.jpg"
    assert cv2.imwrite(str(src), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = tmp_path / "colour_out.jpg"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert "is in colour" in run.stderr
    assert out.read_bytes().startswith(JPEG_MAGIC)
    rgb = read_rgb_image(out)
    assert rgb.shape == (64, 96, 3)
    assert mean_chroma(rgb) > MIN_CHROMA
    source = read_rgb_image(src)
    assert lightness_diff(rgb, rgb_to_grey_levels(source)) < 3.0  # JPEG twice: lossy
    # its colour is replaced: the output's colour is not the photo's
    assert float((lab_of(rgb)[1:] - lab_of(source)[1:]).abs().mean()) > 10


@pytest.mark.parametrize("out_name,magic", [("o.png", PNG_MAGIC), ("o.jpg", JPEG_MAGIC), ("o.JPEG", JPEG_MAGIC)])
def test_output_format_follows_the_extension(tmp_path, reference, out_name, magic):
    src = write_png(tmp_path / "photo.png", grey_photo(64, 48))
    out = tmp_path / out_name
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert out.read_bytes().startswith(magic)
    assert read_rgb_image(out).shape == (48, 64, 3)


def test_unwritable_image_extension_is_an_error(tmp_path, reference):
    src = write_png(tmp_path / "photo.png", grey_photo(64, 48))
    out = tmp_path / "photo.tiff"
    run = colorize_cli(src, out, reference)
    assert_clean_error(run, ".png or .jpg")
    assert not out.exists() and partial_files(tmp_path) == []


def test_default_output_name(tmp_path, reference):
    src = tmp_path / "scan.tif"
    assert cv2.imwrite(str(src), grey_photo(64, 48))
    run = run_cli(src, "-r", reference, "--work-res", "48")
    assert run.code == 0, run.stderr
    out = tmp_path / "scan_color.png"  # TIFF is read, PNG is written
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert mean_chroma(read_rgb_image(out)) > MIN_CHROMA


def _make_tree(root: Path) -> dict[str, np.ndarray]:
    """A folder of grey photos in nested subfolders, a non-image file and a hidden file."""
    photos = {
        "a.png": grey_photo(64, 48, 0),
        "sub/b.png": grey_photo(48, 64, 5),
        "sub/deeper/c.png": grey_photo(80, 48, 9),
        "sub/deeper/d.jpg": grey_photo(64, 48, 13),
        "other/e.bmp": grey_photo(56, 40, 17),
    }
    for rel, grey in photos.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), grey)
    (root / "sub" / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"ignored")
    return photos


def _expected_output(rel: str) -> str:
    path = Path(rel)
    return str(path.with_suffix(".png")) if path.suffix.lower() not in (".png", ".jpg", ".jpeg") else rel


def test_folder_mirrors_the_tree_and_resumes(tmp_path, reference):
    src = tmp_path / "photos"
    photos = _make_tree(src)
    out = tmp_path / "photos_out"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    warnings = run.warning_lines()
    assert len(warnings) == 1 and "notes.txt" in warnings[0] and "not an image" in warnings[0]
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(_expected_output(rel) for rel in photos)
    for rel, grey in photos.items():
        rgb = read_rgb_image(out / _expected_output(rel))
        assert rgb.shape[:2] == grey.shape
        assert mean_chroma(rgb) > MIN_CHROMA, rel
        limit = 3.0 if rel.endswith(".jpg") else 1.0
        assert lightness_diff(rgb, cv2.imread(str(src / rel), cv2.IMREAD_GRAYSCALE)) < limit, rel

    # resume: mark every output with an old time; a second run rewrites none of them
    old = 1_000_000_000
    for p in out.rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    missing = out / "sub" / "deeper" / "c.png"
    missing.unlink()
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert "4 image(s) already done" in run.stderr
    assert missing.exists() and missing.stat().st_mtime > old
    for p in out.rglob("*"):
        if p.is_file() and p != missing:
            assert p.stat().st_mtime == old, f"{p} was rewritten"

    # --overwrite redoes them all
    run = colorize_cli(src, out, reference, "--overwrite")
    assert run.code == 0, run.stderr
    assert all(p.stat().st_mtime > old for p in out.rglob("*") if p.is_file())
    assert partial_files(out) == []


def test_folder_output_that_is_a_file(tmp_path, reference):
    src = tmp_path / "photos"
    _make_tree(src)
    out = tmp_path / "taken"
    out.write_text("a file")
    run = colorize_cli(src, out, reference)
    assert_clean_error(run, "not a folder")
    assert out.read_text() == "a file"


def test_preview_of_a_film_writes_a_contact_sheet(tmp_path, reference):
    film = write_clip(tmp_path / "film.mp4", frames=48, size=(96, 64))
    run = run_cli(film, "-r", reference, "--preview", "--work-res", "48")
    assert run.code == 0, run.stderr
    sheet = tmp_path / "film_color_preview.png"  # the default name of a preview
    assert sheet.read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / "film_color.mp4").exists()  # only the preview is written
    rgb = read_rgb_image(sheet)
    rows, tile_w = 4, round(96 * ROW_HEIGHT / 64)
    assert rgb.shape == (rows * (ROW_HEIGHT + 4), 3 * tile_w, 3)  # grey | reference | output
    for r in range(rows):
        top = r * (ROW_HEIGHT + 4)
        grey_tile = rgb[top : top + ROW_HEIGHT, :tile_w]
        ref_tile = rgb[top : top + ROW_HEIGHT, tile_w : 2 * tile_w]
        out_tile = rgb[top : top + ROW_HEIGHT, 2 * tile_w :]
        assert mean_chroma(grey_tile) < 1.5
        assert mean_chroma(ref_tile) > MIN_CHROMA
        assert mean_chroma(out_tile) > MIN_CHROMA
        assert float((lab_of(out_tile)[0] - lab_of(grey_tile)[0]).abs().mean()) < 2.0
    # the four rows are frames from different times of the film
    firsts = [rgb[r * (ROW_HEIGHT + 4) : r * (ROW_HEIGHT + 4) + ROW_HEIGHT, :tile_w] for r in range(rows)]
    assert all(np.abs(firsts[i].astype(int) - firsts[i + 1]).mean() > 2 for i in range(rows - 1))


def test_preview_of_a_photo(tmp_path, reference):
    src = write_png(tmp_path / "photo.png", grey_photo(96, 64))
    sheet = tmp_path / "sheet.png"
    run = run_cli(src, "-r", reference, "--preview", "-o", sheet, "--work-res", "48")
    assert run.code == 0, run.stderr
    rgb = read_rgb_image(sheet)
    assert rgb.shape[0] == ROW_HEIGHT + 4  # one row
    assert mean_chroma(rgb[:ROW_HEIGHT, -round(96 * ROW_HEIGHT / 64) :]) > MIN_CHROMA


def test_output_folder_inside_the_input_is_not_read_back(tmp_path, reference):
    src = tmp_path / "photos"
    photos = _make_tree(src)
    out = src / "coloured"
    for _ in range(2):
        run = colorize_cli(src, out, reference)
        assert run.code == 0, run.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(_expected_output(rel) for rel in photos)
