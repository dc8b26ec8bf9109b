"""Reference images: loading, the per-shot mapping file, and choosing a reference per shot.

A shot is matched to the reference whose luminance looks most like its keyframe. The
signature of an image is made of three cues computed on its CIE L (the keyframe is grey,
so colour cannot help): the luminance histogram (64 bins), a 16x16 thumbnail (layout), and
a 4x4 grid of 8-bin gradient-orientation histograms (texture and structure). Similarity is
the mean of the three correlations. A gallery (``gallery_references``) chooses instead by
the deep-feature recommendation of ``vidcolor.film.recommend`` and reads only the images chosen.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from vidcolor.ops.color import is_grey, rgb_to_grey_levels
from vidcolor.errors import InputError, ReferenceImageError
from vidcolor.io.images import eight_bit, is_image_path, list_images, read_rgb
from vidcolor.console import log


MAPPING_SUFFIXES = {".csv", ".json"}


@dataclass
class Reference:
    path: Path
    _rgb: np.ndarray | None = field(default=None, repr=False)  # read on first use

    @property
    def rgb(self) -> np.ndarray:
        """The image, ``(H, W, 3)`` uint8."""
        if self._rgb is None:
            self._rgb = load_reference(self.path)._rgb
        return self._rgb

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ReferenceSet:
    """The references of a run and, optionally, an explicit shot -> reference mapping."""

    references: list[Reference]
    mapping: dict[int, int]  # shot index -> index into references
    chooser: Callable[[np.ndarray], tuple[int, float]] | None = None  # default: signatures
    _signatures: list[np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.references)

    def choose(self, grey: np.ndarray) -> tuple[int, float]:
        """The reference most like grey levels ``(H, W)``, and its similarity (1.0 when
        there is only one)."""
        if len(self.references) == 1:
            return 0, 1.0
        if self.chooser is not None:
            return self.chooser(grey)
        if self._signatures is None:
            self._signatures = reference_signatures(self)
        return best_reference(grey, self._signatures)

    @property
    def needs_shots(self) -> bool:
        return len(self.references) > 1


def load_reference(path: Path) -> Reference:
    path = Path(path)
    try:
        rgb = read_rgb(path)
    except InputError as e:
        raise ReferenceImageError(f"reference {e}") from None
    if is_grey(rgb):
        log.warning(f"reference {path.name} has almost no colour; the result will be nearly grey")
    return Reference(path, rgb)


def _read_mapping(path: Path) -> dict[int, Path]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ReferenceImageError(f"{path}: cannot read the reference mapping ({e.strerror})") from None
    rows: list[tuple] = []
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            if isinstance(data, dict):
                rows = list(data.items())
            else:
                rows = [(d["shot"], d["reference"]) for d in data]
        else:
            for row in csv.reader(text.splitlines()):
                if not row or row[0].strip().lower() in ("shot", "shot_index", "") or row[0].startswith("#"):
                    continue
                rows.append((row[0], row[1]))
        mapping = {int(shot): (path.parent / str(ref).strip()) for shot, ref in rows}
    except (ValueError, KeyError, IndexError, TypeError, json.JSONDecodeError):
        raise ReferenceImageError(
            f"{path}: a reference mapping has lines 'shot_index,reference_path' (CSV) "
            "or {\"shot_index\": \"reference_path\"} (JSON)"
        ) from None
    if not mapping:
        raise ReferenceImageError(f"{path}: the reference mapping is empty")
    if min(mapping) < 0:
        raise ReferenceImageError(f"{path}: shot {min(mapping)} does not exist; shots are numbered from 0 "
                                  "(see 'vidcolor shots FILM')")
    return mapping


KEYFRAMES = "keyframes.csv"  # the mapping ``vidcolor shots --export-keyframes DIR`` writes beside the keyframes


def keyframe_mapping(folder: Path) -> Path | None:
    """The mapping of shots to keyframes in a folder exported by ``vidcolor shots``, if any."""
    path = Path(folder) / KEYFRAMES
    return path if Path(folder).is_dir() and path.is_file() else None


def gather_references(items: list[Path]) -> ReferenceSet:
    """``--reference`` values (images, folders of images, mapping files) -> a ReferenceSet.
    A folder of exported keyframes stands for its mapping (each shot its own keyframe)."""
    paths: list[Path] = []
    by_shot: dict[int, Path] = {}
    for item in items:
        item = keyframe_mapping(item) or Path(item)
        if item.is_dir():
            found, _ = list_images(item)
            if not found:
                raise ReferenceImageError(f"{item}: no reference images in this folder")
            paths += found
        elif item.suffix.lower() in MAPPING_SUFFIXES:
            mapping = _read_mapping(item)
            by_shot.update(mapping)
            paths += [p for p in mapping.values() if p not in paths]
        elif not item.exists():
            raise ReferenceImageError(f"reference {item}: no such file")
        elif not is_image_path(item):
            raise ReferenceImageError(f"reference {item}: not an image (.png, .jpg, ...) or mapping (.csv, .json)")
        else:
            paths.append(item)
    unique = list(dict.fromkeys(paths))
    references = [load_reference(p) for p in unique]
    mapping = {shot: unique.index(p) for shot, p in by_shot.items()}
    return ReferenceSet(references, mapping)


def signature(grey: np.ndarray) -> np.ndarray:
    """Luminance signature of grey levels ``(H, W)`` (uint8/uint16): three zero-mean unit
    vectors (histogram, thumbnail, orientation grid) end to end."""
    grey = eight_bit(grey)
    h, w = grey.shape
    scale = 128 / min(h, w)
    small = cv2.resize(grey, (max(16, round(w * scale)), max(16, round(h * scale))), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([small], [0], None, [64], [0, 256]).ravel()
    thumb = cv2.resize(small, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    f = small.astype(np.float32)
    gx, gy = cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1)
    magnitude, angle = cv2.cartToPolar(gx, gy)
    bins = np.minimum((angle % np.pi) / np.pi * 8, 7).astype(np.int64)
    rows = np.minimum(np.arange(small.shape[0]) * 4 // small.shape[0], 3)
    cols = np.minimum(np.arange(small.shape[1]) * 4 // small.shape[1], 3)
    cell = rows[:, None] * 4 + cols[None, :]
    hog = np.bincount((cell * 8 + bins).ravel(), weights=magnitude.ravel(), minlength=128)
    return np.concatenate([unit(hist), unit(thumb), unit(hog)])


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` with zero mean and unit length (or zero): the dot product of two is their correlation."""
    v = v.astype(np.float64) - v.mean()
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of the three correlations of two signatures, in [-1, 1]."""
    return float(a @ b) / 3.0


def reference_signatures(refs: ReferenceSet) -> list[np.ndarray]:
    return [signature(rgb_to_grey_levels(r.rgb)) for r in refs.references]


def best_reference(grey: np.ndarray, signatures: list[np.ndarray]) -> tuple[int, float]:
    """Index of the reference most like the grey frame, and its similarity."""
    sig = signature(grey)
    scores = [similarity(sig, s) for s in signatures]
    best = int(np.argmax(scores))
    return best, scores[best]


def gallery_references(folder: Path, backbone, device="cpu") -> ReferenceSet:
    """Every image of ``folder`` as a candidate reference, chosen per shot (or photo) by the
    two-stage recommendation of He et al. 2018 on ``backbone``'s features; the gallery's
    index file is made or brought up to date first."""
    from vidcolor.film.recommend import open_gallery, recommend

    index = open_gallery(Path(folder), backbone, device)
    references = [Reference(p) for p in index.paths]
    position = {p: k for k, p in enumerate(index.paths)}

    def choose(grey: np.ndarray) -> tuple[int, float]:
        best = recommend(grey, index, top=1)[0]
        return position[best.path], best.score

    return ReferenceSet(references, {}, chooser=choose)


def folder_references(folder: Path, engine, always_recommend: bool = False) -> ReferenceSet:
    """A folder of references: recommended per shot on the deep features of the model's own
    backbone (with ``always_recommend`` and a model that has none, on the default
    recommendation backbone); otherwise chosen by luminance signatures."""
    from vidcolor.film.recommend import recommendation_backbone

    backbone = getattr(engine.colorizer, "backbone", None)
    if backbone is None and not always_recommend:
        return gather_references([folder])
    return gallery_references(folder, backbone or recommendation_backbone(None), engine.device)
