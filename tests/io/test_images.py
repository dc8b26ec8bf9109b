"""Photos and folders of photos: formats, sizes, colour, mirrored trees, resuming, preview."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

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
from vidcolor.ops.color import grey_to_lightness, rgb_to_grey_levels, rgb_to_lab
from vidcolor.io.images import eight_bit
from vidcolor.film.preview import ROW_HEIGHT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
TIFF_MAGIC = b"II*\x00"
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


def deep_grey(width: int = 96, height: int = 64) -> np.ndarray:
    """16-bit grey: the photo's shapes plus a ramp of 256 levels within each 8-bit step."""
    ramp = np.arange(width) * 256 // width
    return (grey_photo(width, height).astype(np.uint16) * 256 + ramp[None, :]).astype(np.uint16)


def lightness_of_deep(rgb16: np.ndarray) -> np.ndarray:
    """CIE L of uint16 RGB ``(H, W, 3)``."""
    return rgb_to_lab(torch.from_numpy(rgb16.astype(np.float32) / 65535).permute(2, 0, 1)[None])[0, 0].numpy()


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_grey_gives_sixteen_bit_colour(tmp_path, reference, suffix):
    grey16 = deep_grey()
    src = write_png(tmp_path / "deep.png", grey16)
    assert cv2.imread(str(src), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    out = tmp_path / f"deep_out{suffix}"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    rgb16 = read_rgb_image(out)
    assert rgb16.shape == (64, 96, 3) and rgb16.dtype == np.uint16
    assert mean_chroma((rgb16 // 257).astype(np.uint8)) > MIN_CHROMA
    # the lightness follows the 16-bit levels, not their 8-bit steps (0.2 L apart on average;
    # the median leaves out the few colours whose lightness the sRGB gamut changes)
    lightness = lightness_of_deep(rgb16)
    assert float(np.median(np.abs(lightness - grey_to_lightness(grey16).numpy()))) < 0.01
    assert float(np.median(np.abs(lightness - grey_to_lightness(eight_bit(grey16)).numpy()))) > 0.1
    assert len(np.unique(rgb16[..., 1])) > 2000


def test_sixteen_bit_grey_to_jpeg_is_eight_bit(tmp_path, reference):
    grey16 = deep_grey()
    src = write_png(tmp_path / "deep.png", grey16)
    out = tmp_path / "deep_out.jpg"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    rgb = read_rgb_image(out)
    assert rgb.dtype == np.uint8 and mean_chroma(rgb) > MIN_CHROMA
    assert float((lab_of(rgb)[0] - grey_to_lightness(grey16)).abs().mean()) < 3.0


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


@pytest.mark.parametrize("out_name,magic", [("o.png", PNG_MAGIC), ("o.jpg", JPEG_MAGIC), ("o.JPEG", JPEG_MAGIC),
                                            ("o.tif", TIFF_MAGIC), ("o.TIFF", TIFF_MAGIC)])
def test_output_format_follows_the_extension(tmp_path, reference, out_name, magic):
    src = write_png(tmp_path / "photo.png", grey_photo(64, 48))
    out = tmp_path / out_name
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert out.read_bytes().startswith(magic)
    assert read_rgb_image(out).shape == (48, 64, 3)


def test_unwritable_image_extension_is_an_error(tmp_path, reference):
    src = write_png(tmp_path / "photo.png", grey_photo(64, 48))
    out = tmp_path / "photo.webp"
    run = colorize_cli(src, out, reference)
    assert_clean_error(run, ".png, .tif or .jpg")
    assert not out.exists() and partial_files(tmp_path) == []


def test_default_output_name(tmp_path, reference):
    src = tmp_path / "scan.tif"
    assert cv2.imwrite(str(src), grey_photo(64, 48))
    run = run_cli(src, "-r", reference, "--work-res", "48")
    assert run.code == 0, run.stderr
    out = tmp_path / "scan_color.tif"  # a TIFF stays a TIFF
    assert out.read_bytes().startswith(TIFF_MAGIC)
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
    return str(path.with_suffix(".png")) if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff") else rel


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


# -- alpha, and pictures stored in colour that are grey ------------------------------------


def write_still(path: Path, image: np.ndarray, pix_fmt: str, palette: np.ndarray | None = None) -> Path:
    """One picture written by PyAV's encoder for ``path``'s format (png or tiff), in
    ``pix_fmt``: ``gray``, ``rgb24``, ``rgba``, ``rgba64be`` (png) or ``rgba64le`` (tiff),
    ``pal8`` (``image`` the indices into ``palette`` rows A, R, G, B) or ``ya8`` (``image``
    ``(H, W, 2)``: grey and alpha)."""
    height, width = image.shape[:2]
    codec = av.CodecContext.create("png" if path.suffix == ".png" else "tiff", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, pix_fmt
    codec.time_base = 1
    if pix_fmt == "ya8":
        frame = av.VideoFrame(width, height, "ya8")
        plane = frame.planes[0]
        rows = np.zeros((height, plane.line_size), np.uint8)
        rows[:, : 2 * width] = image.reshape(height, 2 * width)
        plane.update(rows.tobytes())
    else:
        frame = av.VideoFrame.from_ndarray(image if palette is None else (image, palette), format=pix_fmt)
    path.write_bytes(b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)]))
    return path


def write_cmyk_tiff(path: Path, cmyk: np.ndarray) -> Path:
    """An uncompressed 8-bit CMYK TIFF of ``cmyk`` ``(H, W, 4)`` (ink amounts, 0 = none)."""
    height, width = cmyk.shape[:2]
    data = cmyk.astype(np.uint8).tobytes()
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 4, 0), (259, 3, 1, 1), (262, 3, 1, 5),
               (273, 4, 1, 0), (277, 3, 1, 4), (278, 3, 1, height), (279, 4, 1, len(data)), (284, 3, 1, 1),
               (332, 3, 1, 1)]
    bits_at = 8 + 2 + 12 * len(entries) + 4
    values = {258: bits_at, 273: bits_at + 8}
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(entries)))
    for tag, kind, count, value in entries:
        value = values.get(tag, value)
        out += struct.pack("<HHI", tag, kind, count) + struct.pack("<HH" if kind == 3 and count == 1 else "<I",
                                                                   *((value, 0) if kind == 3 and count == 1 else (value,)))
    path.write_bytes(bytes(out + struct.pack("<I4H", 0, 8, 8, 8, 8)) + data)
    return path


def read_bgra(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.ndim == 3 and image.shape[2] == 4, f"{path} has no alpha"
    return image


def opacity(width: int = 96, height: int = 64) -> np.ndarray:
    """An alpha with every level: a ramp across, a transparent hole."""
    y, x = np.mgrid[0:height, 0:width]
    alpha = (x * 255 // (width - 1)).astype(np.uint8)
    alpha[(y - height // 2) ** 2 + (x - width // 2) ** 2 < (height // 5) ** 2] = 0
    return alpha


# each writes a picture with alpha and returns it, its grey levels and its alpha


def _grey_rgba(tmp_path, suffix):  # written by OpenCV
    grey, alpha = grey_photo(), opacity()
    path = tmp_path / f"in{suffix}"
    assert cv2.imwrite(str(path), np.dstack([grey, grey, grey, alpha]))
    return path, grey, alpha


def _grey_alpha(tmp_path, suffix):
    grey, alpha = grey_photo(), opacity()
    return write_still(tmp_path / f"in{suffix}", np.dstack([grey, alpha]), "ya8"), grey, alpha


def _colour_rgba(tmp_path, suffix):
    photo, alpha = moving_colour(3, 96, 64), opacity()
    path = write_still(tmp_path / f"in{suffix}", np.dstack([photo, alpha]), "rgba")
    return path, rgb_to_grey_levels(photo), alpha


def _deep_rgba(tmp_path, suffix):  # written by OpenCV
    grey16, alpha16 = deep_grey(), opacity().astype(np.uint16) * 257 + 7
    path = tmp_path / f"in{suffix}"
    assert cv2.imwrite(str(path), np.dstack([grey16, grey16, grey16, alpha16]))
    return path, grey16, alpha16


def _deep_colour_rgba(tmp_path, suffix):
    photo16 = moving_colour(3, 96, 64).astype(np.uint16) * 257 + deep_grey()[..., None] % 256
    alpha16 = opacity().astype(np.uint16) * 257 + 7
    pix_fmt = "rgba64be" if suffix == ".png" else "rgba64le"
    path = write_still(tmp_path / f"in{suffix}", np.dstack([photo16, alpha16]), pix_fmt)
    return path, rgb_to_grey_levels(photo16), alpha16


@pytest.mark.parametrize("out_suffix", [".png", ".tif"])
@pytest.mark.parametrize("in_suffix", [".png", ".tif"])
@pytest.mark.parametrize("make", [_grey_rgba, _grey_alpha, _colour_rgba, _deep_rgba, _deep_colour_rgba],
                         ids=["grey-rgba", "grey+alpha", "colour-rgba", "16-bit-grey-rgba", "16-bit-colour-rgba"])
def test_alpha_is_kept(tmp_path, reference, make, in_suffix, out_suffix):
    src, grey, alpha = make(tmp_path, in_suffix)
    before = src.read_bytes()
    out = tmp_path / f"out{out_suffix}"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert src.read_bytes() == before
    bgra = read_bgra(out)
    assert bgra.dtype == alpha.dtype and np.array_equal(bgra[..., 3], alpha)
    rgb = cv2.cvtColor(bgra[..., :3], cv2.COLOR_BGR2RGB)
    if rgb.dtype == np.uint16:
        assert float(np.median(np.abs(lightness_of_deep(rgb) - grey_to_lightness(grey).numpy()))) < 0.01
        rgb = (rgb // 257).astype(np.uint8)
    else:
        assert lightness_diff(rgb, grey) < 1.0
    assert mean_chroma(rgb) > MIN_CHROMA


def test_alpha_is_dropped_in_jpeg(tmp_path, reference):
    src, grey, _ = _grey_alpha(tmp_path, ".png")
    out = tmp_path / "out.jpg"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    rgb = read_rgb_image(out)
    assert rgb.dtype == np.uint8 and mean_chroma(rgb) > MIN_CHROMA
    assert lightness_diff(rgb, grey) < 3.0


def _palette(colour: bool) -> np.ndarray:
    palette = np.empty((256, 4), np.uint8)  # A, R, G, B
    palette[:, 0] = 255
    palette[:, 1:] = np.arange(256)[:, None]
    if colour:
        palette[:, 3] = 255 - palette[:, 3]
    return palette


def _palette_png(tmp_path, colour):
    return write_still(tmp_path / "palette.png", grey_photo(), "pal8", _palette(colour))


def _equal_rgba_png(tmp_path, colour):
    grey = grey_photo()
    rgba = np.dstack([grey, grey, grey if not colour else 255 - grey, opacity()])
    return write_still(tmp_path / "rgba.png", rgba, "rgba")


def _cmyk_tiff(tmp_path, colour):
    ink = 255 - grey_photo()
    zero = np.zeros_like(ink)
    cyan = ink // 2 if colour else zero
    return write_cmyk_tiff(tmp_path / "cmyk.tif", np.dstack([cyan, zero, zero, ink]))


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
@pytest.mark.parametrize("make", [_palette_png, _equal_rgba_png, _cmyk_tiff], ids=["palette", "rgba", "cmyk"])
def test_colour_note_only_for_pictures_in_colour(tmp_path, reference, make, colour):
    src = make(tmp_path, colour)
    out = tmp_path / "out.png"
    run = colorize_cli(src, out, reference)
    assert run.code == 0, run.stderr
    assert ("is in colour" in run.stderr) == colour, run.stderr
    rgb = read_rgb_image(out) if make is not _equal_rgba_png else cv2.cvtColor(read_bgra(out)[..., :3], cv2.COLOR_BGR2RGB)
    assert mean_chroma(rgb) > MIN_CHROMA
    if not colour:
        assert lightness_diff(rgb, grey_photo()) < 1.0
