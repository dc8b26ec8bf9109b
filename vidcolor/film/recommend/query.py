"""A query from start to end: the target read (an image, or the middle frame of a film),
described as the gallery's images are, and ranked (``recommend``); with the gallery's index
brought up to date first, what ``vidcolor recommend`` does (``recommend_for``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidcolor.errors import InputError
from vidcolor.film.recommend.features import recommendation_backbone
from vidcolor.film.recommend.gallery import GalleryIndex, open_gallery
from vidcolor.film.recommend.ranking import BETA, CANDIDATES, Recommendation, rank
from vidcolor.io.images import is_image_path, read_image


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
