"""The per-shot report of a film: which reference each shot had and how far the model trusted
its colour, so a colourist sees which shots need a better reference.

Each shot's mean match confidence (models that know it: the exemplar network) goes into the
log as the shot ends, and, with ``report``, into a small JSON file beside the output
(``film_color.report.json``)::

    {"film": "film.mp4", "output": "film_color.mp4", "model": "exemplar", "frames": 240,
     "resumed_from": 0, "shots": [{"shot": 0, "start_frame": 0, "start_time": 0.0, "frames": 120,
                "reference": "ref.jpg", "confidence": 0.81, "colourfulness": 31.2}, ...]}

A resumed run reports the shots it coloured itself (from where it went on).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from vidcolor.console import log
from vidcolor.ops.color import colourfulness
from vidcolor.io.atomic import atomic_output

SUBSAMPLE = 4  # colourfulness is measured on every 4th pixel of every 4th row
LOW_CONFIDENCE = 0.5  # a shot below this is named in the log as needing a better reference


@dataclass
class ShotEntry:
    shot: int
    start_frame: int
    start_time: float
    frames: int = 0
    reference: str | None = None
    confidence: float | None = None  # the mean of its frames', once the shot has ended
    colourfulness: float | None = None  # the mean of its frames' (Hasler and Suesstrunk 2003)


class ShotReport:
    """Collects the film loop's batches shot by shot (``add``), logs each shot's confidence
    when it ends, and writes the JSON (``write``)."""

    def __init__(self, colourfulness: bool = True):
        self.measure_colour = colourfulness  # False: only the log's confidence is wanted
        self.shots: list[ShotEntry] = []
        self._seen: list[float] = []  # the current shot's per-frame confidences
        self._colour: list[float] = []  # and colourfulness

    def add(self, batch, reference: str | None) -> None:
        first = batch.frames[0]
        if not self.shots or self.shots[-1].shot != batch.shot:
            self._finish()
            self.shots.append(ShotEntry(batch.shot, first.index, round(float(first.time), 3), reference=reference))
        self.shots[-1].frames += len(batch.frames)
        self._seen += batch.confidence or []
        if self.measure_colour:
            self._colour += [colourfulness(rgb[::SUBSAMPLE, ::SUBSAMPLE]) for rgb in batch.rgb]

    def _finish(self) -> None:
        seen, self._seen = self._seen, []
        colour, self._colour = self._colour, []
        if not self.shots:
            return
        entry = self.shots[-1]
        if colour:
            entry.colourfulness = round(sum(colour) / len(colour), 2)
        if not seen:
            return
        entry.confidence = round(sum(seen) / len(seen), 3)
        how = "; a better reference would help" if entry.confidence < LOW_CONFIDENCE else ""
        log.info(f"shot {entry.shot} (from {entry.start_time:.2f} s): confidence {entry.confidence:.2f}{how}")

    def close(self) -> None:
        """The last shot has ended."""
        self._finish()

    def as_dicts(self) -> list[dict]:
        return [asdict(s) for s in self.shots]

    def write(self, path: Path, **header) -> None:
        write(path, self.as_dicts(), **header)


def write(path: Path, shots: list[dict], **header) -> None:
    """The report's JSON file: ``header``'s values, then the shots."""
    with atomic_output(path) as partial:
        partial.write_text(json.dumps({**header, "shots": shots}, indent=2) + "\n")


def report_path(output: Path) -> Path:
    """``film_color.mp4`` -> ``film_color.report.json``."""
    return output.with_name(output.stem + ".report.json")
