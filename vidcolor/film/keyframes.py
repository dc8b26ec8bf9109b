"""Keyframes exported for a colourist (``vidcolor shots FILM --export-keyframes DIR``): the
first frame of each shot as ``shot_NNNN.png``, grey or coloured by an automatic network
(``auto``), and ``keyframes.csv``, one line a shot (``shot_index,reference_path,start_time``).
``--reference DIR`` reads that mapping back (``references.keyframe_mapping``): each shot takes
its own keyframe, as the colourist left it, with no hand editing of the mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidcolor.errors import InputError, ModelError
from vidcolor.film.references import KEYFRAMES
from vidcolor.film.shots import Shot
from vidcolor.io.atomic import atomic_output
from vidcolor.io.images import eight_bit, write_image


class KeyframeExport:
    """``on_keyframe`` of ``scan_shots``: writes each shot's keyframe; ``finish`` writes the mapping."""

    def __init__(self, folder: Path, model: str | None = None, device: str = "auto", auto: bool = False):
        self.folder = Path(folder)
        self.written: dict[int, Path] = {}
        self.model: str | None = None
        self.engine = None
        if auto or model:
            from vidcolor.colorizers import best_automatic, names
            from vidcolor.film.engine import Engine

            name = model or best_automatic()
            if name is None:
                raise ModelError("`auto`: no automatic network has weights installed")
            if name not in names(automatic=True):
                raise InputError(f"`model={name}` is not an automatic network; choose {', '.join(names(automatic=True))}")
            self.engine, self.model = Engine(name, device=device), name

    def __call__(self, shot: Shot, grey: np.ndarray) -> None:
        path = self.folder / f"shot_{shot.index:04d}.png"
        if self.engine is not None:
            rgb = self.engine.colorize([grey], None)[0]
        else:
            rgb = np.repeat(eight_bit(grey)[..., None], 3, axis=2)
        write_image(path, rgb)
        self.written[shot.index] = path

    def finish(self, shots: list[Shot]) -> Path:
        """Write ``keyframes.csv`` for the shots whose keyframe was written; returns its path."""
        lines = ["shot_index,reference_path,start_time"]
        lines += [f"{s.index},{self.written[s.index].name},{s.start_time:.3f}" for s in shots if s.index in self.written]
        path = self.folder / KEYFRAMES
        with atomic_output(path) as partial:
            partial.write_text("\n".join(lines) + "\n")
        return path
