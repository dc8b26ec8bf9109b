"""Colour reference recommendation: He et al. 2018, "Deep Exemplar-based Colorization",
section 4 ("Color Reference Recommendation").

Every image is seen through its luminance only (the target is grey). A backbone's deepest
level (stride 16) gives two descriptors:

- global: the level-5 map average- and max-pooled, each part L2-normalised, end to end
  (the paper uses VGG-19's fc6, which a convolutional backbone does not have; pooled
  convolutional features are the usual stand-in, Babenko and Lempitsky 2015);
- local: the level-5 map itself, one L2-normalised vector per position, together with the
  luminance histogram (16 bins, each pixel shared between its two nearest bins) of the
  16x16 image cell under each position.

Both are compressed with PCA fitted on the gallery (global to at most 128 dimensions, local
to at most 64, as in the paper, after Babenko et al. 2014) and L2-normalised again.

A query ranks the whole gallery by the cosine of the global descriptors, keeps the best
``candidates`` (N = 200 in the paper) and ranks those by the local score of equation (8):
for each target position p, its nearest neighbour q in the candidate (cosine of the local
features), and ``d(F_T(p), F_R(q)) + beta * d_H(C_T(p), C_R(q))`` with ``d`` the cosine,
``d_H`` the correlation coefficient of the two cell histograms and beta = 0.25. The mean over
p replaces the paper's sum so that images of different sizes compare.

The gallery's descriptors are kept in one index file inside the gallery folder
(``.vidcolor-gallery.npz``), reused while the images are unchanged and updated for the
images added, removed or changed since.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.models.exemplar import backbones
from vidcolor import console
from vidcolor.io.atomic import atomic_output
from vidcolor.models.exemplar.backbones import Backbone
from vidcolor.ops.color import rgb_to_grey_levels
from vidcolor.errors import InputError, OutputError, ReferenceImageError
from vidcolor.io.images import is_image_path, list_images, read_image

log = logging.getLogger("vidcolor")

INDEX_NAME = ".vidcolor-gallery.npz"
INDEX_FORMAT = 1
BETA = 0.25
CANDIDATES = 200
GLOBAL_DIMS = 128
LOCAL_DIMS = 64
CELL = 16  # level 5 has stride 16: one position per 16x16 image cell
FIT_IMAGES = 256  # the local PCA is fitted on at most this many images, spread over the gallery
FIT_ROWS = 65536  # and on at most this many of their positions
REFIT_GROWTH = 2  # a gallery that doubled since a fit on fewer than FIT_IMAGES is described again
CHUNK = 64  # candidates ranked at once (bounds the memory of the local ranking)


@dataclass(frozen=True)
class Settings:
    """How images are described; an index made with other settings is rebuilt."""

    short_side: int = 224
    max_aspect: float = 2.0  # longer images are squeezed to this aspect ratio
    bins: int = 16
    pooling: str = "avgmax"  # "avg" or "avgmax"


@dataclass
class Descriptor:
    """One image's raw (uncompressed) descriptors."""

    global_: np.ndarray  # (G,) float32, unit norm
    local: np.ndarray  # (P, C) float32, unit rows
    hist: np.ndarray  # (P, bins) float32, zero-mean unit rows (correlation = dot product)


class Recommendation(NamedTuple):
    path: Path
    score: float  # local score (equation 8, mean over positions)
    global_score: float  # cosine of the compressed global descriptors


# -- image preparation ---------------------------------------------------------------------


def descriptor_size(height: int, width: int, settings: Settings = Settings()) -> tuple[int, int]:
    """Size ``(h, w)`` the image is described at: short side ``settings.short_side``
    (up or down), aspect kept up to ``settings.max_aspect``, both multiples of 16."""
    short = settings.short_side
    long = min(max(height, width) * short / min(height, width), short * settings.max_aspect)
    h, w = (short, long) if height <= width else (long, short)
    return max(CELL, int(round(h / CELL)) * CELL), max(CELL, int(round(w / CELL)) * CELL)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    shrink = h <= image.shape[0] and w <= image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def luminance(image: np.ndarray, settings: Settings = Settings()) -> np.ndarray:
    """Grey levels ``(H, W)`` (uint8/uint16) or uint8 RGB ``(H, W, 3)`` -> float32 grey in
    [0, 1] at :func:`descriptor_size`. Colour becomes the grey of the same CIE L."""
    size = descriptor_size(image.shape[0], image.shape[1], settings)
    if image.ndim == 3:
        return rgb_to_grey_levels(np.ascontiguousarray(_resize(image, size))).astype(np.float32) / 255.0
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return _resize(image.astype(np.float32) / scale, size)


def cell_histograms(grey: np.ndarray, grid: tuple[int, int], bins: int) -> np.ndarray:
    """Luminance histogram of each cell of a ``grid`` over float grey ``(H, W)`` in [0, 1]:
    ``(gh * gw, bins)`` rows, each centred and L2-normalised so that the dot product of two
    rows is their correlation coefficient (a flat row stays zero). Each pixel is shared
    between its two nearest bin centres, so a small change of brightness changes the
    histogram a little rather than moving whole spikes from bin to bin."""
    gh, gw = grid
    h, w = grey.shape
    position = np.clip(grey * bins - 0.5, 0, bins - 1)  # bin centres at whole numbers
    low = position.astype(np.int64)
    high = np.minimum(low + 1, bins - 1)
    share = (position - low).ravel()
    rows = np.minimum(np.arange(h) * gh // h, gh - 1)
    cols = np.minimum(np.arange(w) * gw // w, gw - 1)
    cell = (rows[:, None] * gw + cols[None, :]).ravel() * bins
    size = gh * gw * bins
    counts = np.bincount(cell + low.ravel(), 1 - share, size) + np.bincount(cell + high.ravel(), share, size)
    counts = counts.reshape(gh * gw, bins)
    return _unit_rows(counts - counts.mean(axis=1, keepdims=True))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


# -- descriptors ---------------------------------------------------------------------------


def global_descriptor(level5: torch.Tensor, pooling: str = "avgmax") -> torch.Tensor:
    """Level-5 map ``(C, h, w)`` -> pooled descriptor: average-pooled (``avg``), or average-
    and max-pooled end to end (``avgmax``); each part and the whole L2-normalised.

    ``avgmax`` is the default: with the ``compact`` backbone over 1,066 photos, the global
    ranking alone put a grey copy's original first for 62 % of cropped and brightened
    copies and 86 % of tone-curved and blurred ones, against 39 % and 40 % with ``avg``
    (mirrored copies: 31 % against 41 %)."""
    parts = [level5.mean((1, 2))]
    if pooling == "avgmax":
        parts.append(level5.amax((1, 2)))
    return F.normalize(torch.cat([F.normalize(p, dim=0) for p in parts]), dim=0)


def local_features(level5: torch.Tensor) -> torch.Tensor:
    """Level-5 map ``(C, h, w)`` -> ``(h * w, C)``: one unit vector per position, row-major."""
    return F.normalize(level5.flatten(1).T, dim=1)


@torch.no_grad()
def describe(image: np.ndarray, backbone: Backbone, device: torch.device | str = "cpu", settings: Settings = Settings()) -> Descriptor:
    """Descriptors of an image (grey levels or RGB) from its luminance."""
    grey = luminance(image, settings)
    dtype = next((p.dtype for p in backbone.parameters()), torch.float32)  # a half-precision backbone gets half input
    x = torch.from_numpy(grey)[None, None].to(device, dtype)
    level5 = backbone(x)[4][0].float().cpu()
    grid = tuple(level5.shape[1:])
    return Descriptor(
        global_descriptor(level5, settings.pooling).numpy(),
        local_features(level5).numpy(),
        cell_histograms(grey, grid, settings.bins),
    )


def fingerprint(backbone: Backbone) -> str:
    """First 16 hex digits of the sha256 of the backbone's state (names, shapes, bytes)."""
    digest = hashlib.sha256()
    for name, tensor in backbone.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def recommendation_backbone(weights: Path | None) -> Backbone:
    """The backbone that describes images: from ``weights`` (backbone weights or an exemplar
    checkpoint), else that of the installed exemplar network, else the ``compact`` backbone
    with a fixed random initialisation (seed 0); in eval mode."""
    from vidcolor.models.weights import default_weights

    weights = weights or default_weights("exemplar")
    if weights is not None:
        return backbones.load(weights).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = backbones.create("compact")
    return model.eval()


# -- PCA -----------------------------------------------------------------------------------


@dataclass
class PCA:
    """Principal components: ``y = (x - mean) @ components.T``."""

    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (k, D), orthonormal rows, by decreasing variance

    @property
    def dims(self) -> int:
        return self.components.shape[0]


def pca_dims(limit: int, samples: int, features: int) -> int:
    """Components kept: at most ``limit``, and no more than the data supports (``samples - 1``
    for centred data, ``features``); at least one."""
    return max(1, min(limit, features, samples - 1))


def fit_pca(x: torch.Tensor, limit: int) -> PCA:
    """PCA of rows ``x`` ``(n, D)``, keeping :func:`pca_dims` components (torch.linalg.eigh
    of the covariance)."""
    x = x.double()
    mean = x.mean(0)
    centred = x - mean
    covariance = centred.T @ centred / max(1, len(x) - 1)
    values, vectors = torch.linalg.eigh(covariance)
    order = torch.argsort(values, descending=True)[: pca_dims(limit, len(x), x.shape[1])]
    return PCA(mean.float(), vectors[:, order].T.float().contiguous())


def project(pca: PCA, x: torch.Tensor) -> torch.Tensor:
    """Rows ``(n, D)`` -> compressed rows ``(n, k)``."""
    return (x.float() - pca.mean) @ pca.components.T


def reconstruct(pca: PCA, y: torch.Tensor) -> torch.Tensor:
    """Compressed rows ``(n, k)`` -> rows ``(n, D)`` (exact for data inside the subspace)."""
    return y.float() @ pca.components + pca.mean


def compress(pca: PCA, x: torch.Tensor) -> torch.Tensor:
    """Project, then L2-normalise each row: the vectors whose dot products are cosines."""
    return F.normalize(project(pca, x), dim=1)


# -- the gallery index ---------------------------------------------------------------------


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


# -- the query -----------------------------------------------------------------------------


def global_scores(index: GalleryIndex, target: Descriptor) -> torch.Tensor:
    """Cosine of the target's compressed global descriptor with every gallery image's."""
    query = compress(index.global_pca, torch.from_numpy(target.global_)[None])[0]
    return index.global_compressed @ query


def _candidate_rows(index: GalleryIndex, candidates: torch.Tensor) -> torch.Tensor:
    """Row numbers ``(N, Q)`` of the candidates' positions, padded to the longest by
    repeating each candidate's first row (a repeat changes no nearest neighbour)."""
    start = index.offsets[candidates]
    count = index.offsets[candidates + 1] - start
    step = torch.arange(int(count.max()))
    return start[:, None] + torch.where(step[None] < count[:, None], step[None], 0)


def local_scores(index: GalleryIndex, target: Descriptor, candidates: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """Equation (8) for each candidate, as a mean over the target positions p: the cosine
    to p's nearest neighbour q among the candidate's positions plus ``beta`` times the
    correlation of the cells' luminance histograms. ``candidates``: image numbers ``(N,)``."""
    query = compress(index.local_pca, torch.from_numpy(target.local))  # (P, k)
    query_hist = torch.from_numpy(target.hist)  # (P, bins)
    scores = []
    for chunk in candidates.split(CHUNK):
        rows = _candidate_rows(index, chunk)  # (n, Q)
        cosine = torch.matmul(query, index.local[rows].float().transpose(1, 2))  # (n, P, Q)
        best, q = cosine.max(dim=2)  # (n, P)
        matched = index.hist[rows.gather(1, q)].float()  # (n, P, bins)
        correlation = (matched * query_hist).sum(-1)
        scores.append((best + beta * correlation).mean(1))
    return torch.cat(scores)


def rank(index: GalleryIndex, target: Descriptor, top: int = 5, candidates: int = CANDIDATES, beta: float = BETA) -> list[Recommendation]:
    """Global ranking, then the local ranking of the best ``candidates``; best ``top`` first."""
    coarse = global_scores(index, target)
    shortlist = torch.topk(coarse, min(candidates, len(index))).indices
    fine = local_scores(index, target, shortlist, beta)
    order = torch.argsort(fine, descending=True, stable=True)[:top]
    return [
        Recommendation(index.folder / index.items[int(shortlist[i])].entry.path, float(fine[i]), float(coarse[shortlist[i]]))
        for i in order
    ]


def recommend(
    target: np.ndarray | Path | str, index: GalleryIndex, top: int = 5, candidates: int = CANDIDATES, beta: float = BETA
) -> list[Recommendation]:
    """The gallery images best suited as colour references for ``target`` (grey levels
    ``(H, W)`` uint8/uint16, or the path of an image or a film), best first, as
    ``(path, score, global_score)``."""
    image = read_target(Path(target)) if isinstance(target, (str, Path)) else target
    return rank(index, index.describe(image), top, candidates, beta)


def recommend_for(
    target: Path, gallery: Path, top: int = 5, weights: Path | None = None, device: torch.device | str = "cpu"
) -> list[Recommendation]:
    """What ``vidcolor recommend`` does: read the target (image or film), bring the
    gallery's index up to date with the backbone of ``weights``, rank."""
    image = read_target(target)
    index = open_gallery(gallery, recommendation_backbone(weights), device)
    return recommend(image, index, top=top)


# -- targets -------------------------------------------------------------------------------


def read_target(path: Path) -> np.ndarray:
    """An image's pixels (grey levels or RGB), or the middle frame of a film as grey levels
    turned as the film is displayed."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if is_image_path(path):
        return read_image(path)
    return middle_frame(path)


def middle_frame(path: Path) -> np.ndarray:
    from vidcolor.io.video_reader import VideoReader

    with VideoReader(path, copy=False) as probe:
        middle = probe.info.duration / 2
    for start in (middle, None):
        with VideoReader(path, start=start, copy=False, queue_size=2) as reader:
            frame = next(iter(reader.frames()), None)
        if frame is not None:
            return np.ascontiguousarray(np.rot90(frame.grey, k=(frame.rotation // 90) % 4))
    raise InputError(f"{path}: no video frames could be read")
