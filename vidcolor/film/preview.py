"""``--preview``: a contact sheet of a few colorized frames, to look before a long run.

One row per sampled frame: the grey input, the reference it gets, and the output. A film's
frames are coloured by the film loop (``vidcolor.film.loop``) as the first frame of a shot:
the reference most like it, the temporal state fresh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from vidcolor.film.engine import Engine
from vidcolor.errors import InputError
from vidcolor.io.images import eight_bit, is_image_path, list_images, write_image
from vidcolor.film.loop import FilmLoop
from vidcolor.film.pipeline import ChosenReferences, colorize_grey, load_grey
from vidcolor.film.references import ReferenceSet
from vidcolor.io.video_reader import Frame, VideoReader

ROW_HEIGHT = 240


def sample_frames(source: Path, count: int, start: float | None, end: float | None) -> list[Frame]:
    """``count`` frames spread evenly over a film."""
    with VideoReader(source, copy=False) as probe:
        duration = probe.info.duration
    lo = start or 0.0
    hi = min(end, duration) if end is not None else duration
    frames = []
    for k in range(count):
        t = lo + (hi - lo) * (k + 0.5) / count
        with VideoReader(source, start=t, end=hi, copy=False, queue_size=2) as reader:
            frame = next(iter(reader.frames()), None)
            if frame is not None:
                frames.append(frame)
    if not frames:
        raise InputError(f"{source}: no frames to preview")
    return frames


def _coloured(source: Path, engine: Engine, refs: ReferenceSet | None, count: int, start: float | None,
              end: float | None) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """(grey levels, RGB, index of the reference or -1) of each sampled frame or image."""
    if source.is_dir() or is_image_path(source):
        prepared: dict = {}
        paths = list_images(source)[0][:count] if source.is_dir() else [source]
        for path in paths:
            grey = load_grey(path)
            out, index, _ = colorize_grey(grey, engine, refs, prepared)
            yield grey, out, index
        return
    references = ChosenReferences(engine, refs, mapping=False, announce=False)
    for frame in sample_frames(source, count, start, end):
        for batch in FilmLoop(engine, references, batch_size=1).run([frame]):
            yield frame.grey, batch.rgb[0], batch.choice


def _fit(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    width = max(1, round(w * ROW_HEIGHT / h))
    return cv2.resize(rgb, (width, ROW_HEIGHT), interpolation=cv2.INTER_AREA)


def _grey_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(eight_bit(grey)[..., None], 3, axis=2)


def write_preview(
    source: Path,
    output: Path,
    engine: Engine,
    refs: ReferenceSet | None,
    count: int = 4,
    start: float | None = None,
    end: float | None = None,
) -> None:
    rows = []
    for grey, out, index in _coloured(source, engine, refs, count, start, end):
        reference = refs.references[index].rgb if index >= 0 else None
        tiles = [_fit(_grey_rgb(grey))]
        if reference is not None:
            tiles.append(_fit(reference))
        tiles.append(_fit(out))
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    write_image(output, np.concatenate(rows, axis=0))
