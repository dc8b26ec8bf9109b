"""Still images: reading (grey or colour, 8 or 16 bits, alpha), atomic writing (PNG and TIFF
keep 16 bits and alpha, JPEG is 8-bit without), folder listing."""

from __future__ import annotations

import os
import re
import struct
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from vidcolor.io.atomic import as_output_error, atomic_output
from vidcolor.errors import InputError, OutputError
from vidcolor.console import log

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
WRITE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg"}
DEEP_SUFFIXES = {".png", ".tif", ".tiff"}  # formats that keep 16 bits and alpha
BAND_PIXELS = 1 << 22  # pixels compared at a time when looking for colour

# TIFF tags (first directory) that tell what OpenCV's decoded channels are
PHOTOMETRIC, EXTRA_SAMPLES = 262, 338
SEPARATED = 5  # CMYK
ASSOCIATED_ALPHA, UNASSOCIATED_ALPHA = 1, 2  # values of EXTRA_SAMPLES

_OPENCV_PREFIX = re.compile(r"^\[ ?\w+:[\d@.]+\] global \S+ \S+ ")  # "[ WARN:0@1.2] global file.cpp:793 function "


@dataclass
class Picture:
    """A still image as the colorizer takes it."""

    grey: np.ndarray  # grey levels (H, W), uint8 or uint16 as in the file
    alpha: np.ndarray | None  # its alpha (H, W), same depth, or None
    colour: bool  # the picture has colour (its channels differ): grey is its luminance


def eight_bit(grey: np.ndarray) -> np.ndarray:
    """Grey levels of any depth (uint8 or uint16) as uint8."""
    return grey if grey.dtype == np.uint8 else (grey >> 8).astype(np.uint8)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _decode(path: Path) -> np.ndarray:
    """The file's pixels as OpenCV reads them unchanged: grey ``(H, W)`` or BGR(A)
    ``(H, W, 3|4)``, uint8 or uint16 (other depths are scaled to uint8)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)
    with _native_messages() as said:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        reason = said[-1] if said else ""
        raise InputError(f"{path}: not a readable image" + (f" ({reason})" if reason else ""))
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype not in (np.uint8, np.uint16):
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return image


@contextmanager
def _native_messages() -> Iterator[list[str]]:
    """Collect what the image libraries print straight to stderr (libpng's "libpng error:
    ...", libtiff's warnings, OpenCV's own) while the block runs, instead of letting it
    interleave with vidcolor's one-line messages. Yields the list the lines go into."""
    said: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            said += [_OPENCV_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip()]


def _to_depth(image: np.ndarray, dtype) -> np.ndarray:
    """uint8 <-> uint16 (levels scaled by 257, rounded); unchanged when already ``dtype``."""
    if image.dtype == dtype:
        return image
    if dtype == np.uint16:
        return image.astype(np.uint16) * 257
    return cv2.convertScaleAbs(image, alpha=1 / 257)


def read_image(path: Path) -> np.ndarray:
    """Read an image as grey levels ``(H, W)`` (uint8, or uint16 when 16-bit grey) or as
    uint8 RGB ``(H, W, 3)``. Alpha is dropped."""
    channels, _ = _channels(Path(path))
    if channels.ndim == 2:
        return np.ascontiguousarray(channels)
    return cv2.cvtColor(_to_depth(channels, np.uint8), cv2.COLOR_BGR2RGB)


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as uint8 RGB ``(H, W, 3)``, grey images repeated over three channels."""
    image = read_image(path)
    if image.ndim == 2:
        image = np.repeat(_to_depth(image, np.uint8)[..., None], 3, axis=2)
    return image


def read_picture(path: Path) -> Picture:
    """Read an image to colour: its grey levels at the file's depth (the CIE L of a colour
    picture's pixels, with a note that its colour is replaced) and its alpha. A picture
    stored with three equal channels (grey RGB or RGBA, a grey palette, grey CMYK) is grey."""
    path = Path(path)
    channels, alpha = _channels(path)
    colour = channels.ndim == 3 and not _same_channels(channels)
    if colour:
        from vidcolor.ops.color import rgb_to_grey_levels

        log.info(f"{path.name} is in colour: its luminance is used and its colour replaced")
        grey = rgb_to_grey_levels(channels[..., ::-1])
    else:
        grey = np.ascontiguousarray(channels[..., 0] if channels.ndim == 3 else channels)
    return Picture(grey, None if alpha is None else np.ascontiguousarray(alpha), colour)


def _channels(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An image's grey ``(H, W)`` or BGR ``(H, W, 3)`` channels and its alpha (or None).
    OpenCV reads a TIFF's declared alpha badly (it drops a grey image's, multiplies the
    colours of others by it) and makes up an opaque one for CMYK: PyAV reads those."""
    image = _decode(path)
    channels, alpha = image, None
    if image.ndim == 3 and image.shape[2] == 2:
        channels, alpha = image[..., 0], image[..., 1]
    elif image.ndim == 3:
        channels, alpha = image[..., :3], (image[..., 3] if image.shape[2] == 4 else None)
    if path.suffix.lower() not in (".tif", ".tiff"):
        return channels, alpha
    tags = _tiff_tags(path)
    if tags.get(EXTRA_SAMPLES) in (ASSOCIATED_ALPHA, UNASSOCIATED_ALPHA):
        decoded = _decode_alpha_tiff(path)
        if decoded is not None and decoded[0].shape[:2] == channels.shape[:2]:
            return decoded
    if tags.get(PHOTOMETRIC) == SEPARATED and EXTRA_SAMPLES not in tags:
        alpha = None
    return channels, alpha


def _same_channels(image: np.ndarray) -> bool:
    """True when the three channels of ``(H, W, 3)`` are equal everywhere (a band at a time)."""
    step = max(1, BAND_PIXELS // image.shape[1])
    for y in range(0, image.shape[0], step):
        band = image[y : y + step]
        if not (np.array_equal(band[..., 0], band[..., 1]) and np.array_equal(band[..., 0], band[..., 2])):
            return False
    return True


def _tiff_tags(path: Path) -> dict[int, int]:
    """The first value of each short or long tag of a classic TIFF's first directory (empty
    when the file is not one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:4] not in (b"II*\0", b"MM\0*"):
                return {}
            order = "<" if head[:2] == b"II" else ">"
            f.seek(struct.unpack(order + "I", head[4:])[0])
            (count,) = struct.unpack(order + "H", f.read(2))
            entries = f.read(12 * count)
    except (OSError, struct.error):
        return {}
    tags = {}
    for k in range(len(entries) // 12):
        tag, kind, _, value = struct.unpack(order + "HHI4s", entries[12 * k : 12 * k + 12])
        if kind in (3, 4):  # SHORT, LONG
            tags[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
    return tags


def _decode_alpha_tiff(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A grey+alpha or RGBA TIFF decoded with PyAV as it is stored: grey ``(H, W)`` or BGR
    ``(H, W, 3)``, and alpha (None when PyAV cannot)."""
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, OSError, StopIteration):
        return None
    layouts = {"ya8": ("u1", 2), "ya16le": ("<u2", 2), "ya16be": (">u2", 2),
               "rgba": ("u1", 4), "rgba64le": ("<u2", 4), "rgba64be": (">u2", 4)}
    if frame.format.name not in layouts:
        return None
    dtype, count = np.dtype(layouts[frame.format.name][0]), layouts[frame.format.name][1]
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width * count * dtype.itemsize]
    pixels = rows.copy().view(dtype).reshape(frame.height, frame.width, count).astype(dtype.newbyteorder("="))
    return (pixels[..., 0], pixels[..., 1]) if count == 2 else (pixels[..., 2::-1], pixels[..., 3])


def keeps_depth(path: Path) -> bool:
    """True when ``path``'s format keeps 16 bits and alpha (PNG, TIFF)."""
    return path.suffix.lower() in DEEP_SUFFIXES


def check_writable_format(path: Path) -> None:
    """Refuse an output whose extension is not one of the formats written."""
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise OutputError(f"{path}: images are written as .png, .tif or .jpg")


def blank_image(path: Path, shape: tuple[int, int], dtype, alpha: np.ndarray | None = None) -> np.ndarray:
    """An image to fill and write to ``path``, ``shape`` ``(H, W)``, in OpenCV's channel order:
    BGR, or BGRA with ``alpha`` in place; uint16 when ``dtype`` is and the format keeps 16
    bits, else uint8; no alpha in formats without it. Its colour channels as RGB (a view to
    fill): :func:`rgb_channels`. An extension not written is refused before any work."""
    check_writable_format(path)
    deep = keeps_depth(path)
    dtype = np.uint16 if deep and dtype == np.uint16 else np.uint8
    keep_alpha = deep and alpha is not None
    image = np.empty((*shape, 4 if keep_alpha else 3), dtype)
    if keep_alpha:
        image[..., 3] = _to_depth(alpha, dtype)
    return image


def rgb_channels(image: np.ndarray) -> np.ndarray:
    """The colour channels of a BGR(A) image in RGB order: a view ``(H, W, 3)``."""
    return image[..., 2::-1]


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Write RGB ``(H, W, 3)`` (uint8, or uint16 in PNG and TIFF) by the extension; the file
    appears only when complete."""
    write_pixels(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_pixels(path: Path, image: np.ndarray) -> None:
    """Write a BGR or BGRA image (OpenCV's order), uint8 or uint16, as PNG, TIFF or JPEG by
    the extension (JPEG: 8 bits, no alpha); the file appears only when complete."""
    check_writable_format(path)
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        image = _to_depth(image[..., :3], np.uint8)
        params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3] if suffix == ".png" else []
    ok, encoded = cv2.imencode(suffix, image, params)
    if not ok:
        raise OutputError(f"{path}: could not encode the image")
    with atomic_output(path) as tmp:
        try:
            tmp.write_bytes(encoded.data)
        except OSError as e:
            raise as_output_error(e, path) from None


def list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """All image files under ``folder`` (recursively, sorted) and the other files skipped.
    Hidden files (partial outputs among them) are ignored."""
    images, others = [], []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        (images if is_image_path(path) else others).append(path)
    return images, others
