"""The film loop: decoded frames in, coloured frames out, in order, the temporal state handled.

Every film is coloured by this loop: ``vidcolor FILM`` (:func:`vidcolor.film.pipeline.colorize_video`),
``vidcolor eval`` on videos and the film frames of ``--preview``, so that what is measured is
what users get. The frames are decoded once, by the caller; the loop:

- finds the cuts on the fly with the shot detector of ``vidcolor shots``
  (:class:`~vidcolor.film.shots.ShotFollower`, the same threshold), holding back only its
  look-ahead;
- asks a :class:`ShotReferences` strategy for each shot's reference at the shot's first
  frame (one fixed reference, the best match among several, a mapping by shot index, the
  original colour of the first frame...), and has it prepared when the shot is first coloured;
  a strategy with ``renew(frame)`` may give a shot another reference at any later frame
  (automatic keyframes, ``vidcolor.film.keyframes``); one that also has ``span(before,
  after)`` colours the frames between two such references from both: the loop holds them
  until the next one is known, for as long as ``waits(before, frame)`` allows;
- resets the engine's temporal state at every cut and at every segment start
  (``starts_segment``: frame indices that are multiples of the segment length, so that a
  resumed film, and an evaluation of the same film, are the same frame for frame);
- colours batches of ``batch_size`` frames, never across a shot or segment boundary;
- skips the colouring of the frames before ``skip`` (a resumed film, a part of a film):
  they still go through the cut detector, so shot numbers and reference choices are the
  same; and ends at frame ``stop`` (a part of a film), once the detector has seen the
  frames it looks ahead to and the part's last frames know the reference after them, so
  the part's cuts and colours are those of one run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable, Iterator, Protocol

import numpy as np

from vidcolor.film.engine import Engine
from vidcolor.film.shots import DEFAULT_THRESHOLD, Shot, ShotFollower
from vidcolor.io import segments


class FilmFrame(Protocol):
    """What the loop takes: ``VideoReader``'s frames, or anything with these fields."""

    index: int  # 0, 1, 2... in the order given
    time: float  # seconds (only for the shots' log lines)
    grey: np.ndarray  # (H, W) grey levels, uint8 or uint16


class ShotReferences(Protocol):
    """How each shot gets its reference."""

    def choose(self, shot: Shot, frame: Any) -> Any:
        """At the first frame of every shot, in order (also the shots of frames that are not
        coloured, before ``skip``): the shot's reference, as the strategy names it."""

    def prepare(self, choice: Any) -> Any:
        """``choice`` prepared for the engine (``Engine.prepare``, or an ``engine.Blend`` of
        two), when its frames are first coloured."""


@dataclass
class Batch:
    """Consecutive frames of one shot and one segment, coloured."""

    frames: list  # the frames given, in order
    rgb: np.ndarray  # (B, H, W, 3) uint8
    raw: np.ndarray | None  # the model's output before temporal smoothing (``with_raw``)
    shot: int  # the shot's number, from 0
    choice: Any  # the shot's reference, as ``ShotReferences.choose`` named it
    seconds: float  # time spent colouring (preparing the reference and ``Engine.colorize``)
    confidence: list[float] | None = None  # each frame's mean confidence, for models that know it


UNPREPARED = object()  # the current choice is not prepared yet


class FixedReference:
    """The same reference (or none: automatic models) for every shot."""

    def __init__(self, engine: Engine, rgb: np.ndarray | None = None):
        self.engine, self.rgb = engine, rgb
        self._prepared: Any = None
        self._ready = False

    def choose(self, shot: Shot, frame: Any) -> np.ndarray | None:
        return self.rgb

    def prepare(self, choice: Any) -> Any:
        if not self._ready:
            self._prepared, self._ready = self.engine.prepare(self.rgb), True
        return self._prepared


def segment_starts(rate: Fraction | float) -> Callable[[int], bool]:
    """Whether a frame index begins a segment, as ``SegmentedOutput.starts_segment`` says
    for a film at ``rate`` (for loops that write no segments: the same resets)."""
    length = segments.segment_length(rate)
    return lambda index: index % length == 0


def shot_progress(shot: int, reference: str | None = None) -> str:
    """What the progress bar says of the shot being coloured: ``shot 3`` or ``shot 3 (sky.png)``."""
    return f"shot {shot}" + (f" ({reference})" if reference else "")


class FilmLoop:
    """Colour a film's frames: ``for batch in FilmLoop(engine, references).run(frames)``.

    ``starts_segment(index)``: whether the temporal state restarts at frame ``index``
    besides the cuts (None: only at cuts). ``with_raw``: each batch also carries the
    model's output before temporal smoothing. After :meth:`run`, :attr:`shots` is the
    number of shots found."""

    def __init__(self, engine: Engine, references: ShotReferences, batch_size: int = 4,
                 threshold: float = DEFAULT_THRESHOLD, starts_segment: Callable[[int], bool] | None = None,
                 skip: int = 0, with_raw: bool = False, stop: int | None = None):
        self.engine, self.references = engine, references
        self.batch_size, self.threshold = max(1, batch_size), threshold
        self.starts_segment = starts_segment or (lambda index: False)
        self.skip, self.with_raw, self.stop = skip, with_raw, stop
        self.shots = 0
        self.stopped = False  # ``stop`` was reached before the film's end

    def run(self, frames: Iterable[FilmFrame]) -> Iterator[Batch]:
        """The coloured batches, in order, as soon as each is complete; only the detector's
        look-ahead, one batch and, for a strategy that blends two keyframes, the frames
        waiting for the next keyframe are held."""
        follower = ShotFollower(self.threshold)
        self.shots, self.stopped = 0, False
        state = {"choice": None, "prepared": UNPREPARED, "started": False}
        batch: list = []
        renew = getattr(self.references, "renew", None)
        blending = hasattr(self.references, "span")  # frames wait for the keyframe after them
        held: list = []  # (frame, starts_shot) between the opened keyframe and the next
        span = {"opened": None, "closed": True}  # closed: no later keyframe is waited for

        def colour() -> Iterator[Batch]:
            if not batch:
                return
            t0 = time.perf_counter()
            if state["prepared"] is UNPREPARED:
                state["prepared"] = self.references.prepare(state["choice"])
            out = self.engine.colorize([f.grey for f in batch], state["prepared"], sequence=True,
                                       with_raw=self.with_raw, indices=[f.index for f in batch])
            rgb, raw = out if self.with_raw else (out, None)
            confidence = self.engine.confidence
            done = Batch(list(batch), rgb, raw, self.shots - 1, state["choice"], time.perf_counter() - t0,
                         None if confidence is None else [float(c) for c in confidence])
            batch.clear()
            yield done

        def use(choice) -> Iterator[Batch]:
            """The frames placed from now on take ``choice``."""
            yield from colour()
            state["choice"], state["prepared"] = choice, UNPREPARED

        def place(frame, starts_shot: bool) -> Iterator[Batch]:
            fresh = starts_shot or self.starts_segment(frame.index) or not state["started"]
            if fresh or len(batch) >= self.batch_size:
                yield from colour()
            if fresh:
                self.engine.new_shot()
                state["started"] = True
            batch.append(frame)

        def begin(key) -> Iterator[Batch]:
            """A keyframe (or a shot's reference) for the frames from here on."""
            if blending:
                span["opened"], span["closed"] = key, False
            else:
                yield from use(key)

        def settle(after) -> Iterator[Batch]:
            """The waiting frames are coloured between the opened keyframe and ``after`` (None:
            there is none, and the frames up to the next keyframe take the opened one alone)."""
            if span["closed"]:
                return
            yield from use(self.references.span(span["opened"], after))
            for frame, starts_shot in held:
                yield from place(frame, starts_shot)
            held.clear()
            yield from colour()
            span["closed"] = after is None

        def take(released: list) -> Iterator[Batch]:
            for index, frame, _, starts_shot in released:
                past = self.stop is not None and index >= self.stop  # past a part: only settles what waits
                if past and not held:
                    self.stopped = True
                    return
                if starts_shot:
                    yield from settle(None)  # the last shot's frames
                    yield from colour()
                    if past:
                        self.stopped = True
                        return
                    shot = Shot(self.shots, index, index + 1, frame.time, frame.time)
                    choice = self.references.choose(shot, frame)
                    self.shots += 1
                    yield from begin(choice)
                elif renew is not None:
                    choice = renew(frame)  # another keyframe within the shot
                    if choice is not None:
                        yield from settle(choice)
                        yield from begin(choice)
                    elif blending and not span["closed"] and not self.references.waits(span["opened"], frame):
                        yield from settle(None)  # waited as long as allowed
                if past or index < self.skip:
                    continue
                if blending and not span["closed"]:
                    held.append((frame, starts_shot))
                else:
                    yield from place(frame, starts_shot)

        for frame in frames:
            yield from take(follower.push(frame.index, frame, frame.grey))
            if self.stopped:
                break
        else:
            yield from take(follower.flush())
        yield from settle(None)
        yield from colour()
