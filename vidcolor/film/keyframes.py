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


# -- automatic colour for films, by keyframes ------------------------------------------------

DARK, BRIGHT = 0.06, 0.94  # mean grey level (of 1) below or above which a frame makes no keyframe
BINS = 32


def histogram(levels: np.ndarray) -> np.ndarray:
    """The grey-level histogram of 8-bit levels (32 bins, summing to 1): what a frame shows,
    whatever moves."""
    counts = np.bincount((levels.ravel() // (256 // BINS)).astype(np.int64), minlength=BINS).astype(np.float64)
    return counts / counts.sum()


class Keyframe:
    """A frame chosen to be coloured automatically and carried over the frames that follow it."""

    def __init__(self, index: int, time: float, grey: np.ndarray):
        self.index, self.time, self.grey = index, time, grey
        levels = eight_bit(grey)
        self.histogram = histogram(levels)
        self.usable = DARK <= float(levels.mean()) / 255.0 <= BRIGHT

    def __str__(self) -> str:
        return f"keyframe {self.index} at {self.time:.2f} s"


class AutoKeyframes:
    """The film loop's reference strategy in automatic keyframe mode: each shot's first frame
    is a keyframe, and so is a later frame of the shot when ``key_every`` seconds have passed
    since the last keyframe, when the picture has drifted from it (half the L1 distance of
    their grey-level histograms above ``drift``: new content, not motion), or when the last
    keyframe was near black or near
    white and this frame is not. A keyframe is coloured by the automatic ``auto`` engine
    when it is first needed (so a resumed film chooses the same keyframes and colours only
    those it uses); the frames that follow it are coloured by ``engine`` (the exemplar
    network) with it as their reference, so the colour stays put between keyframes."""

    def __init__(self, engine, auto, key_every: float = 4.0, drift: float = 0.3):
        if key_every <= 0:
            raise InputError("`key_every` must be a positive number of seconds")
        self.engine, self.auto = engine, auto
        self.key_every, self.drift = key_every, drift
        self.key: Keyframe | None = None
        self._prepared: tuple[int, object] | None = None

    def choose(self, shot: Shot, frame) -> Keyframe:
        self.key = Keyframe(frame.index, frame.time, frame.grey)
        return self.key

    def renew(self, frame) -> Keyframe | None:
        """A new keyframe at this frame of the shot, or None to keep the last one."""
        key = self.key
        candidate = Keyframe(frame.index, frame.time, frame.grey)
        if key is not None and not candidate.usable:
            return None
        if key is None or not key.usable or frame.time - key.time >= self.key_every \
                or 0.5 * float(np.abs(candidate.histogram - key.histogram).sum()) > self.drift:
            self.key = candidate
            return candidate
        return None

    def prepare(self, choice: Keyframe):
        if self._prepared is None or self._prepared[0] != choice.index:
            rgb = self.auto.colorize([choice.grey], None)[0]
            self._prepared = (choice.index, self.engine.prepare(rgb))
        return self._prepared[1]

    def name(self, choice: Keyframe) -> str:
        return str(choice)

    def check_unused(self, shots: int) -> None:
        """Nothing to check: every keyframe belongs to the film."""
