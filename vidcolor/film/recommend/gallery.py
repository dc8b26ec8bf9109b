"""The gallery index (He et al. 2018, section 4): the descriptors of every readable image of
a gallery folder, kept as the raw global descriptors with a PCA (to at most 128 dimensions)
fitted on all of them, the local features compressed with a PCA (to at most 64, as in the
paper, after Babenko et al. 2014) fitted on a sample of the gallery, and the cells'
luminance histograms.

The index is kept in one file inside the gallery folder (``.vidcolor-gallery.npz``), reused
while the images are unchanged and updated for the images added, removed or changed since
(``open_gallery``). The local PCA is fitted on at most 256 images spread over the gallery;
a gallery fitted on fewer that has doubled since is described again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from vidcolor import console
from vidcolor.errors import InputError, OutputError, ReferenceImageError
from vidcolor.film.recommend.features import Descriptor, Settings, describe, fingerprint
from vidcolor.io.atomic import atomic_output
from vidcolor.io.images import list_images, read_image
from vidcolor.models.exemplar.backbones import Backbone
from vidcolor.ops.pca import PCA, compress, fit_pca
from vidcolor.console import log


INDEX_NAME = ".vidcolor-gallery.npz"
INDEX_FORMAT = 1
GLOBAL_DIMS = 128
LOCAL_DIMS = 64
FIT_IMAGES = 256  # the local PCA is fitted on at most this many images, spread over the gallery
FIT_ROWS = 65536  # and on at most this many of their positions
REFIT_GROWTH = 2  # a gallery that doubled since a fit on fewer than FIT_IMAGES is described again


# -- the index -----------------------------------------------------------------------------


@dataclass
class Entry:
    path: str  # relative to the gallery folder, with forward slashes
    size: int
    mtime_ns: int


@dataclass
class Stored:
    """One image's part of the index: raw global, compressed local features, histograms."""

    entry: Entry
    global_: np.ndarray  # (G,) float32
    local: np.ndarray  # (P, LOCAL_DIMS at most) float16, compressed and unit rows
    hist: np.ndarray  # (P, bins) float16


@dataclass
class GalleryIndex:
    """The descriptors of every readable image of a gallery folder, with the PCA fitted on
    them and what is needed to describe a target the same way."""

    folder: Path
    backbone: Backbone
    device: torch.device
    settings: Settings
    fingerprint: str
    items: list[Stored]
    local_pca: PCA
    fitted_on: int  # images the local PCA was fitted on
    global_pca: PCA | None = None  # fitted on the items when not given
    global_compressed: torch.Tensor = field(init=False)  # (n, kg) unit rows
    local: torch.Tensor = field(init=False)  # (sum P, kl) float16
    hist: torch.Tensor = field(init=False)  # (sum P, bins) float16
    offsets: torch.Tensor = field(init=False)  # (n + 1,) int64: image i has rows offsets[i]:offsets[i+1]

    def __post_init__(self) -> None:
        raw = torch.from_numpy(np.stack([s.global_ for s in self.items]))
        if self.global_pca is None:
            self.global_pca = fit_pca(raw, GLOBAL_DIMS)
        self.global_compressed = compress(self.global_pca, raw)
        self.local = torch.from_numpy(np.concatenate([s.local for s in self.items]))
        self.hist = torch.from_numpy(np.concatenate([s.hist for s in self.items]))
        counts = torch.tensor([len(s.local) for s in self.items])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])

    def __len__(self) -> int:
        return len(self.items)

    @property
    def paths(self) -> list[Path]:
        return [self.folder / s.entry.path for s in self.items]

    def describe(self, image: np.ndarray) -> Descriptor:
        return describe(image, self.backbone, self.device, self.settings)


# -- the index file ------------------------------------------------------------------------


def index_path(folder: Path) -> Path:
    return Path(folder) / INDEX_NAME


def _entry(folder: Path, path: Path) -> Entry:
    stat = path.stat()
    return Entry(path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns)


def _meta(backbone: Backbone, print_: str, settings: Settings) -> dict:
    return {"format": INDEX_FORMAT, "backbone": backbone.name, "fingerprint": print_, "settings": asdict(settings)}


def save_index(index: GalleryIndex) -> None:
    """Write the index file in one atomic rename."""
    meta = _meta(index.backbone, index.fingerprint, index.settings) | {"fitted_on": index.fitted_on}
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "paths": np.array([s.entry.path for s in index.items], dtype=np.str_),
        "sizes": np.array([s.entry.size for s in index.items], dtype=np.int64),
        "mtimes": np.array([s.entry.mtime_ns for s in index.items], dtype=np.int64),
        "global": np.stack([s.global_ for s in index.items]),
        "local": index.local.numpy(),
        "hist": index.hist.numpy(),
        "offsets": index.offsets.numpy(),
        "local_mean": index.local_pca.mean.numpy(),
        "local_components": index.local_pca.components.numpy(),
        "global_mean": index.global_pca.mean.numpy(),
        "global_components": index.global_pca.components.numpy(),
    }
    with atomic_output(index_path(index.folder)) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


@dataclass
class Saved:
    """What an index file holds."""

    items: list[Stored]
    local_pca: PCA
    global_pca: PCA
    fitted_on: int


def load_index(folder: Path, backbone: Backbone, print_: str, settings: Settings) -> Saved | None:
    """The content of a gallery's index file, or None when there is none, it cannot be
    read, or it was made another way (backbone, weights, settings, format)."""
    path = index_path(folder)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if {k: meta.get(k) for k in ("format", "backbone", "fingerprint", "settings")} != _meta(backbone, print_, settings):
                log.info(f"{folder}: the gallery index was made another way; describing the images again")
                return None
            offsets = data["offsets"]
            local, hist, global_ = data["local"], data["hist"], data["global"]
            items = [
                Stored(Entry(str(p), int(s), int(m)), global_[i], local[offsets[i] : offsets[i + 1]], hist[offsets[i] : offsets[i + 1]])
                for i, (p, s, m) in enumerate(zip(data["paths"], data["sizes"], data["mtimes"]))
            ]
            local_pca = PCA(torch.from_numpy(data["local_mean"]), torch.from_numpy(data["local_components"]))
            global_pca = PCA(torch.from_numpy(data["global_mean"]), torch.from_numpy(data["global_components"]))
            return Saved(items, local_pca, global_pca, int(meta["fitted_on"]))
    except (OSError, ValueError, KeyError, IndexError, TypeError, json.JSONDecodeError):
        log.warning(f"{path}: unreadable gallery index; describing the images again")
        return None


# -- bringing it up to date ----------------------------------------------------------------


def _read_gallery_image(path: Path) -> np.ndarray | None:
    try:
        return read_image(path)
    except InputError as e:
        log.warning(f"skipping {e}")
        return None


def _fit_sample(count: int) -> list[int]:
    """Indices of at most FIT_IMAGES images spread evenly over ``count``."""
    return sorted({int(i) for i in np.linspace(0, count - 1, min(count, FIT_IMAGES)).round()})


def _fit_local_pca(descriptors: list[Descriptor]) -> PCA:
    rows = np.concatenate([d.local for d in descriptors])
    if len(rows) > FIT_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, FIT_ROWS).astype(np.int64)]
    return fit_pca(torch.from_numpy(rows), LOCAL_DIMS)


def _stored(entry: Entry, d: Descriptor, pca: PCA) -> Stored:
    local = compress(pca, torch.from_numpy(d.local)).to(torch.float16).numpy()
    return Stored(entry, d.global_, local, d.hist.astype(np.float16))


def _describe_entry(folder: Path, entry: Entry, describe_one: Callable[[np.ndarray], Descriptor]) -> Descriptor | None:
    image = _read_gallery_image(folder / entry.path)
    return None if image is None else describe_one(image)


def _describe_all(
    folder: Path, entries: list[Entry], describe_one: Callable[[np.ndarray], Descriptor], pca: PCA | None, tick: Callable[[], object]
) -> tuple[list[Stored], PCA | None, int]:
    """Describe ``entries`` and compress them with ``pca``; with no ``pca``, first fit one
    on a sample spread over them. Returns the stored items, the PCA and how many images it
    was fitted on here (0 when it was given)."""
    sample: dict[int, Descriptor | None] = {}
    fitted_on = 0
    if pca is None:
        for i in _fit_sample(len(entries)):
            sample[i] = _describe_entry(folder, entries[i], describe_one)
            tick()
        readable = [d for d in sample.values() if d is not None]
        if not readable:
            return [], None, 0
        pca, fitted_on = _fit_local_pca(readable), len(readable)
    items = []
    for i, entry in enumerate(entries):
        if i in sample:
            described = sample.pop(i)
        else:
            described = _describe_entry(folder, entry, describe_one)
            tick()
        if described is not None:
            items.append(_stored(entry, described, pca))
    return items, pca, fitted_on


def open_gallery(
    folder: Path, backbone: Backbone, device: torch.device | str = "cpu", settings: Settings = Settings()
) -> GalleryIndex:
    """The index of a gallery folder: read from its index file, brought up to date (images
    added, removed or changed since are described, the others reused) and saved back when
    anything changed. Unreadable images are skipped with a warning each."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReferenceImageError(f"gallery {folder}: no such folder")
    paths, _ = list_images(folder)
    if not paths:
        raise ReferenceImageError(f"gallery {folder}: no images in this folder (.png, .jpg, ...)")
    device = torch.device(device)
    backbone = backbone.to(device).eval()
    print_ = fingerprint(backbone)
    entries = [_entry(folder, p) for p in paths]
    saved = load_index(folder, backbone, print_, settings)
    kept, pca, fitted_on = (saved.items, saved.local_pca, saved.fitted_on) if saved is not None else ([], None, 0)
    if pca is not None and fitted_on < FIT_IMAGES and len(entries) >= REFIT_GROWTH * max(1, fitted_on):
        kept, pca = [], None  # the local PCA was fitted on too few images for this gallery
    known = {s.entry.path: s for s in kept}
    reused = {e.path: known[e.path] for e in entries if e.path in known and known[e.path].entry == e}
    todo = [e for e in entries if e.path not in reused]

    def describe_one(image: np.ndarray) -> Descriptor:
        return describe(image, backbone, device, settings)

    with console.progress(len(todo), f"indexing {folder.name or folder}", unit="images") as bar:
        new, pca, fitted = _describe_all(folder, todo, describe_one, pca, bar.update) if todo else ([], pca, 0)
    fitted_on = fitted or fitted_on
    by_path = reused | {s.entry.path: s for s in new}
    items = [by_path[e.path] for e in entries if e.path in by_path]
    if not items:
        raise ReferenceImageError(f"gallery {folder}: none of its {len(entries)} images could be read")
    unchanged = saved is not None and not new and len(items) == len(saved.items)
    index = GalleryIndex(folder, backbone, device, settings, print_, items, pca, fitted_on, saved.global_pca if unchanged else None)
    if not unchanged:
        _save_or_warn(index)
        if new:
            log.info(f"gallery {folder}: {len(new)} image(s) described, {len(reused)} reused")
    return index


def _save_or_warn(index: GalleryIndex) -> None:
    try:
        save_index(index)
    except OutputError as e:
        log.warning(f"{e}; the gallery index is not saved and will be made again next time")
