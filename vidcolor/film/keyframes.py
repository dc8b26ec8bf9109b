"""Keyframes exported for a colourist (``vidcolor shots FILM --export-keyframes DIR``): the
first frame of each shot as ``shot_NNNN.png``, grey or coloured by an automatic network
(``auto``), and ``keyframes.csv``, one line a shot (``shot_index,reference_path,start_time``).
``--reference DIR`` reads that mapping back (``references.keyframe_mapping``): each shot takes
its own keyframe, as the colourist left it, with no hand editing of the mapping."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from vidcolor.errors import InputError, ModelError
from vidcolor.film.references import KEYFRAMES, unit
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
MAX_WAITING = 1 << 30  # bytes of grey levels held while a span waits for its next keyframe
BINS = 32
LAYOUT = (32, 18)  # width, height of the thumbnail a frame's layout is judged on
SAME_LAYOUT = 0.5  # layouts correlated at least this much show the same scene, whatever the light
STEADY = 0.15  # seconds the light must hold before a change of light alone makes a keyframe


def histogram(levels: np.ndarray) -> np.ndarray:
    """The grey-level histogram of 8-bit levels (32 bins, summing to 1): what a frame shows,
    whatever moves."""
    counts = np.bincount((levels.ravel() // (256 // BINS)).astype(np.int64), minlength=BINS).astype(np.float64)
    return counts / counts.sum()


def layout(levels: np.ndarray) -> np.ndarray:
    """Where a frame is light and dark: a 32x18 thumbnail of its 8-bit levels with zero mean
    and unit length, so that a change of light alone (a flash, a fade) leaves it be."""
    import cv2

    return unit(cv2.resize(levels, LAYOUT, interpolation=cv2.INTER_AREA).ravel())


class Keyframe:
    """A frame chosen to be coloured automatically and carried over the frames that follow it."""

    def __init__(self, index: int, time: float, grey: np.ndarray):
        self.index, self.time, self.grey = index, time, grey
        levels = eight_bit(grey)
        self.histogram = histogram(levels)
        self.usable = DARK <= float(levels.mean()) / 255.0 <= BRIGHT

    def distance(self, other: "Keyframe") -> float:
        """How far apart the two pictures' content is: half the L1 distance of their
        grey-level histograms, in [0, 1] (motion moves it little, new content much)."""
        return 0.5 * float(np.abs(self.histogram - other.histogram).sum())

    @cached_property
    def layout(self) -> np.ndarray:
        """Computed only for a frame whose histogram drifted (``likeness``)."""
        return layout(eight_bit(self.grey))

    def likeness(self, other: "Keyframe") -> float:
        """The correlation of the two pictures' layouts, in [-1, 1]: near 1 for the same
        scene in another light, low for another scene."""
        return float(self.layout @ other.layout)

    def __str__(self) -> str:
        return f"keyframe {self.index} at {self.time:.2f} s"


@dataclass(frozen=True, eq=False)
class Span:
    """The frames of a shot from keyframe ``before`` up to keyframe ``after`` (None: there is
    none in the shot, it shows new content, or it came too late to wait for)."""

    before: Keyframe
    after: Keyframe | None

    def __str__(self) -> str:
        return str(self.before) if self.after is None else f"keyframes {self.before.index} and {self.after.index}"


class AutoKeyframes:
    """The film loop's reference strategy in automatic keyframe mode: each shot's first frame
    is a keyframe, and so is a later frame of the shot when ``key_every`` seconds have passed
    since the last keyframe, when the picture has drifted from it (half the L1 distance of
    their grey-level histograms above ``drift``: new content, not motion), or when the last
    keyframe was near black or near white and this frame is not. A picture that drifted with
    its layout unchanged (``Keyframe.likeness``) shows the same scene in another light: it
    makes a keyframe only once the light has held for ``STEADY`` seconds, so a fade ends on a
    keyframe of its own and a flickering light (flashes, a strobe, old film's exposure
    flicker) makes none.

    A keyframe is coloured by the automatic ``auto`` engine when it is first needed (so a
    resumed film chooses the same keyframes and colours only those it uses). The frames
    between two keyframes of a shot that show the same content are coloured by ``engine``
    (the exemplar network) from both, blended by distance (``Span``, ``engine.Blend``), so
    the colour moves smoothly from one keyframe to the next instead of jumping; the frames
    before new content, and after a shot's last keyframe, take the keyframe before them
    alone. The film loop keeps a span's frames until its next keyframe is known (a bounded
    buffer: ``waits``), so the film is decoded once."""

    def __init__(self, engine, auto, key_every: float = 4.0, drift: float = 0.3):
        if key_every <= 0:
            raise InputError("`key_every` must be a positive number of seconds")
        self.engine, self.auto = engine, auto
        self.key_every, self.drift = key_every, drift
        self.key: Keyframe | None = None
        self._last: Keyframe | None = None  # the frame before, and since when the light has held
        self._steady_since = 0.0
        self._prepared: dict[int, object] = {}  # keyframe index -> its colour prepared (the last two)

    def choose(self, shot: Shot, frame) -> Keyframe:
        self.key = self._follow(Keyframe(frame.index, frame.time, frame.grey))
        return self.key

    def renew(self, frame) -> Keyframe | None:
        """A new keyframe at this frame of the shot, or None to keep the last one."""
        key, candidate = self.key, self._follow(Keyframe(frame.index, frame.time, frame.grey))
        if key is not None and not candidate.usable:
            return None
        if key is None or not key.usable or frame.time - key.time >= self.key_every or self._moved(key, candidate):
            self.key = candidate
            return candidate
        return None

    def _follow(self, frame: Keyframe) -> Keyframe:
        """Note since when the light has held (each frame within ``drift / 3`` of the one before)."""
        if self._last is None or frame.distance(self._last) > self.drift / 3:
            self._steady_since = frame.time
        self._last = frame
        return frame

    def _moved(self, key: Keyframe, frame: Keyframe) -> bool:
        """Whether ``frame`` shows new content, or the scene of ``key`` in a light that has held."""
        if frame.distance(key) <= self.drift:
            return False
        return frame.likeness(key) < SAME_LAYOUT or frame.time - self._steady_since >= STEADY

    def span(self, before: Keyframe, after: Keyframe | None) -> Span:
        """The frames from ``before`` to ``after`` blend the two where both show the same
        content (a keyframe renewed with time); before new content (or after a dark
        keyframe), they take ``before`` alone."""
        same = after is not None and before.usable and after.distance(before) <= self.drift
        return Span(before, after if same else None)

    def waits(self, key: Keyframe, frame) -> bool:
        """Whether the frames since ``key`` may still wait for the next keyframe at ``frame``:
        for ``key_every`` seconds (a later keyframe is forced then, unless the frames are too
        dark or bright to make one) and ``MAX_WAITING`` bytes of grey levels. Counted from the
        keyframe, so a resumed film waits as long as one coloured straight through."""
        return frame.time - key.time <= self.key_every and (frame.index - key.index) * frame.grey.nbytes <= MAX_WAITING

    def prepare(self, span: Span):
        from vidcolor.film.engine import Blend

        if span.after is None:
            return Blend(self._colour(span.before))
        return Blend(self._colour(span.before), self._colour(span.after), span.before.index, span.after.index)

    def _colour(self, key: Keyframe):
        """The keyframe coloured by the automatic network, prepared as the exemplar network's reference."""
        if key.index not in self._prepared:
            rgb = self.auto.colorize([key.grey], None)[0]
            self._prepared[key.index] = self.engine.prepare(rgb)
            while len(self._prepared) > 2:
                del self._prepared[next(iter(self._prepared))]
        return self._prepared[key.index]

    def name(self, choice: Span) -> str:
        return str(choice)

    def check_unused(self, shots: int) -> None:
        """Nothing to check: every keyframe belongs to the film."""
