"""Shot detection: a streaming content-based cut detector.

Each frame is compared with the one before on a small grey copy by three cues: the change
of its luminance histogram (half the L1 distance of normalised 32-bin histograms), the
change of its edges (the share of Canny edge pixels, in either frame, with no edge within
two pixels in the other) and the mean absolute difference of the pixels (over 255). Their
mean is the frame's score in [0, 1]: the lower of the scores of the frame as it is and of
the frame at the exposure of the one before (``exposed_as``), so that old film's exposure
flicker, each frame a little lighter or darker, is no change of content, while a change of
the mean level that the content makes (a bird flying off a bright sky) is not turned into
one by rescaling the whole frame. A cut is declared where the score passes the threshold
and stands out from its neighbours (adaptive: at least ``ratio`` times the mean score of
the ``window`` frames on each side, which keeps fades and fast motion from counting), and
at least ``min_length`` frames after the previous cut. Only ``window`` frames are held
back. The defaults were chosen on real cuts (BENCHMARKS.md, shot detection).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from vidcolor.io.images import eight_bit
from vidcolor.io.video_reader import VideoReader

ANALYSIS_WIDTH = 160
DEFAULT_THRESHOLD = 0.12
MAX_GAIN = 4.0  # the most a frame's levels are scaled by to be compared at the exposure of the one before


@dataclass
class Shot:
    index: int
    start_frame: int
    end_frame: int  # exclusive
    start_time: float
    end_time: float

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


def analysis_image(grey: np.ndarray) -> np.ndarray:
    """Small uint8 copy of a frame's grey levels for the detector."""
    grey = eight_bit(grey)
    h, w = grey.shape
    width = min(ANALYSIS_WIDTH, w)
    height = max(8, round(h * width / w))
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)


def exposed_as(small: np.ndarray, before: np.ndarray) -> np.ndarray:
    """``small``'s levels times the gain that gives them the mean level of ``before`` (a gain
    within 1/``MAX_GAIN`` and ``MAX_GAIN``): the frame at the exposure of the one before."""
    gain = float(before.mean()) / max(float(small.mean()), 1e-6)
    gain = min(MAX_GAIN, max(1.0 / MAX_GAIN, gain))
    return np.clip(small.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


class _Features:
    def __init__(self, small: np.ndarray):
        self.pixels = small.astype(np.float32)
        hist = cv2.calcHist([small], [0], None, [32], [0, 256]).ravel()
        self.hist = hist / max(1.0, hist.sum())
        edges = cv2.Canny(cv2.GaussianBlur(small, (3, 3), 0), 60, 150) > 0
        self.edges = edges
        self.near = cv2.dilate(edges.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def frame_score(a: _Features, b: _Features) -> float:
    hist = 0.5 * float(np.abs(a.hist - b.hist).sum())
    total = int(a.edges.sum() + b.edges.sum())
    if total == 0:
        edge = 0.0
    else:
        missing = int((a.edges & ~b.near).sum() + (b.edges & ~a.near).sum())
        edge = missing / total
    difference = float(np.abs(a.pixels - b.pixels).mean()) / 255.0
    return (hist + edge + difference) / 3.0


class CutDetector:
    """Feed frames in order with :meth:`push`; it returns the indices of frames that start
    a new shot once it is sure of them, and :meth:`flush` returns the rest at the end."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, window: int = 4, ratio: float = 3.0, min_length: int = 8):
        self.threshold, self.window, self.ratio, self.min_length = threshold, window, ratio, min_length
        self._previous: tuple[np.ndarray, _Features] | None = None  # the frame before: its levels and features
        self._scores: deque[tuple[int, float]] = deque()
        self._history: deque[float] = deque(maxlen=window)
        self._last_cut = -min_length  # a cut may come early in the film

    def push(self, index: int, small: np.ndarray) -> list[int]:
        current = _Features(small)
        if self._previous is not None:
            levels, features = self._previous
            score = min(frame_score(features, current), frame_score(features, _Features(exposed_as(small, levels))))
            self._scores.append((index, score))
        self._previous = small, current
        cuts = []
        while len(self._scores) > self.window:
            cuts += self._decide(list(self._scores)[1 : 1 + self.window])
        return cuts

    def flush(self) -> list[int]:
        cuts = []
        while self._scores:
            cuts += self._decide(list(self._scores)[1 : 1 + self.window])
        return cuts

    def _decide(self, after: list[tuple[int, float]]) -> list[int]:
        index, score = self._scores.popleft()
        neighbours = list(self._history) + [s for _, s in after]
        background = float(np.mean(neighbours)) if neighbours else 0.0
        self._history.append(score)
        is_cut = (
            score >= self.threshold
            and score >= self.ratio * background
            and index - self._last_cut >= self.min_length
        )
        if is_cut:
            self._last_cut = index
            return [index]
        return []


class ShotFollower:
    """The cut detector on frames as they come: :meth:`push` keeps each frame (with any
    payload) until the detector has decided whether it starts a shot, ``window`` frames
    later, then releases it as ``(index, payload, grey, starts_shot)``, in order."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        self.detector = CutDetector(threshold=threshold)
        self.pending: deque = deque()
        self.cuts: set[int] = set()

    def push(self, index: int, payload, grey: np.ndarray) -> list[tuple[int, object, np.ndarray, bool]]:
        self.pending.append((index, payload, grey))
        self.cuts.update(self.detector.push(index, analysis_image(grey)))
        return self._release(index - self.detector.window)

    def flush(self) -> list[tuple[int, object, np.ndarray, bool]]:
        self.cuts.update(self.detector.flush())
        return self._release(math.inf)

    def _release(self, upto: float) -> list:
        out = []
        while self.pending and self.pending[0][0] <= upto:
            i, payload, grey = self.pending.popleft()
            out.append((i, payload, grey, i == 0 or i in self.cuts))
        return out


def scan_shots(
    path: str | Path,
    threshold: float = DEFAULT_THRESHOLD,
    start: float | None = None,
    end: float | None = None,
    on_keyframe: Callable[[Shot, np.ndarray], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Shot]:
    """Detect the shots of a film in one streaming pass. ``on_keyframe(shot, grey)`` is
    called with the first frame of each shot (full resolution grey levels) as soon as the
    shot's start is known; the shot's end fields are final only in the returned list."""
    follower = ShotFollower(threshold)
    starts: list[tuple[int, float]] = []
    last_index, last_time, step = -1, 0.0, 0.0

    def take(released: list) -> None:
        for index, time, grey, starts_shot in released:
            if starts_shot:
                starts.append((index, time))
                if on_keyframe is not None:
                    on_keyframe(Shot(len(starts) - 1, index, index + 1, time, time), grey)

    with VideoReader(path, start=start, end=end, copy=False) as reader:
        for frame in reader.frames():
            take(follower.push(frame.index, frame.time, frame.grey))
            if last_index >= 0:
                step = frame.time - last_time
            last_index, last_time = frame.index, frame.time
            if progress is not None:
                progress(1)
        take(follower.flush())
    shots = []
    for n, (i, t) in enumerate(starts):
        end_frame, end_time = (starts[n + 1] if n + 1 < len(starts) else (last_index + 1, last_time + step))
        shots.append(Shot(n, i, end_frame, t, end_time))
    return shots
