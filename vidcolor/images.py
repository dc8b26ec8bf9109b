"""Still images: reading (grey or colour, 8 or 16 bits), atomic writing, folder listing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vidcolor.atomic import as_output_error, atomic_output
from vidcolor.errors import InputError, OutputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
WRITE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def eight_bit(grey: np.ndarray) -> np.ndarray:
    """Grey levels of any depth (uint8 or uint16) as uint8."""
    return grey if grey.dtype == np.uint8 else (grey >> 8).astype(np.uint8)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: Path) -> np.ndarray:
    """Read an image as grey levels ``(H, W)`` (uint8, or uint16 when 16-bit grey) or as
    uint8 RGB ``(H, W, 3)``. Alpha is dropped."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"{path}: not a readable image")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        if image.dtype not in (np.uint8, np.uint16):
            image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        return image
    if image.dtype == np.uint16:
        image = (image / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as uint8 RGB ``(H, W, 3)``, grey images repeated over three channels."""
    image = read_image(path)
    if image.ndim == 2:
        if image.dtype == np.uint16:
            image = (image / 257.0 + 0.5).astype(np.uint8)
        image = np.repeat(image[..., None], 3, axis=2)
    return image


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Write uint8 RGB as PNG or JPEG (by extension); the file appears only when complete."""
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise OutputError(f"{path}: images are written as .png or .jpg")
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in (".jpg", ".jpeg") else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"{path}: could not encode the image")
    with atomic_output(path) as tmp:
        try:
            tmp.write_bytes(encoded.tobytes())
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
