"""Colorizing films, photos and folders: decode -> frames -> colorizer -> encode.

Films are decoded once and stream through the film loop (``vidcolor.film.loop``: shots
found on the way, each with its reference, batches, temporal resets) into resumable
segments, joined with the source's audio at the end. Every output is written to a temporary file and renamed
when complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidcolor import console, stopping
from vidcolor.io.atomic import as_output_error, atomic_output
from vidcolor.film.background import Background
from vidcolor.film.engine import Engine
from vidcolor.errors import InputError, OutputError
from vidcolor.io.images import (WRITE_SUFFIXES, blank_image, is_image_path, list_images, read_picture, rgb_channels,
                             write_pixels)
from vidcolor.film.report import ShotReport, report_path
from vidcolor.film.report import write as write_report
from vidcolor.film.loop import FilmLoop, shot_progress
from vidcolor.film.references import ReferenceSet
from vidcolor.io import segments as segments_module
from vidcolor.io.media import VIDEO_SUFFIXES
from vidcolor.io.segments import Part, SegmentedOutput, fingerprint
from vidcolor.film.shots import DEFAULT_THRESHOLD, Shot
from vidcolor.io.video_reader import VideoReader
from vidcolor.io.video_writer import DEFAULT_CODEC
from vidcolor.console import log



@dataclass
class VideoOptions:
    codec: str = DEFAULT_CODEC
    crf: int = 18
    start: float | None = None
    end: float | None = None
    batch_size: int = 4
    shot_threshold: float = DEFAULT_THRESHOLD
    overlap: bool = True  # encode in a thread of its own while the next batch is colorized
    report: bool = False  # also write the per-shot report beside the output (``vidcolor.film.report``)
    part: Part | None = None  # only these segments, into the resume folder (``join_parts`` writes the film)


def default_output(source: Path) -> Path:
    """``film.mp4`` -> ``film_color.mp4``; ``photos/`` -> ``photos_color/``; images that
    cannot be written in their own format become PNG."""
    if source.is_dir():
        return source.with_name(source.name + "_color")
    suffix = _image_suffix(source) if is_image_path(source) else source.suffix
    return source.with_name(f"{source.stem}_color{suffix}")


# -- references per shot ------------------------------------------------------------------


class ChosenReferences:
    """The production strategy of the film loop (``vidcolor.film.loop.ShotReferences``):
    with one reference, that one; with several, the one the mapping names for the shot's
    index, or else the best match for the shot's first grey frame (``ReferenceSet.choose``),
    named in a log line (``announce``); ``mapping=False``: always the best match (a frame
    whose shot number is not known). Without references (automatic models), none (-1).
    Each reference is prepared once."""

    def __init__(self, engine: Engine, refs: ReferenceSet | None, mapping: bool = True, announce: bool = True):
        self.engine, self.refs = engine, refs if refs is not None and len(refs) else None
        several = self.refs is not None and self.refs.needs_shots
        self.mapping = self.refs.mapping if several and mapping else {}
        self.announce = announce and several
        self._prepared: dict[int, object] = {}

    def choose(self, shot: Shot, frame) -> int:
        """The index of the shot's reference (-1: none)."""
        if self.refs is None:
            return -1
        if not self.refs.needs_shots:
            return 0
        if shot.index in self.mapping:
            best, how = self.mapping[shot.index], "mapped"
        else:
            best, score = self.refs.choose(frame.grey)
            how = f"best match, similarity {score:.2f}"
        if self.announce:
            log.info(f"shot {shot.index} (from {shot.start_time:.2f} s): reference {self.name(best)} ({how})")
        return best

    def prepare(self, choice: int):
        if choice not in self._prepared:
            self._prepared[choice] = self.engine.prepare(self.refs.references[choice].rgb if choice >= 0 else None)
        return self._prepared[choice]

    def name(self, choice: int) -> str | None:
        return self.refs.references[choice].name if choice >= 0 else None

    def check_unused(self, shots: int) -> None:
        """Warn of mapping entries naming shots the film does not have."""
        unused = sorted(shot for shot in self.mapping if shot >= shots)
        if unused:
            log.warning(f"the reference mapping names shot {', '.join(map(str, unused))}, but the film has "
                        f"{shots} shot(s), 0 to {shots - 1}: not used")


# -- films --------------------------------------------------------------------------------


def colorize_video(source: Path, output: Path, engine: Engine, refs: ReferenceSet | None, options: VideoOptions,
                   resume: bool = False, settings: dict | None = None, strategy=None) -> int:
    """Colorize a film into ``output``; returns the number of frames written. The film is
    decoded once and coloured by the film loop (``vidcolor.film.loop``: shots found on the
    way, each with its reference); the frames go into resumable segments
    (``vidcolor.io.segments``); ``resume`` continues an interrupted run made with the same
    ``settings`` (what else decides the colours: model, weights, references...). ``strategy``:
    how the shots get their references, when not from ``refs`` (automatic keyframes)."""
    references = strategy if strategy is not None else ChosenReferences(engine, refs)
    written = 0
    with VideoReader(source, start=options.start, end=options.end, copy=False) as reader:
        info = reader.info
        key = fingerprint(source, reader.container.streams,
                          {**(settings or {}), "codec": options.codec, "crf": options.crf, "start": options.start,
                           "end": options.end, "segment_seconds": segments_module.SEGMENT_SECONDS})
        segments = SegmentedOutput(output, info, options.codec, options.crf, options.start or 0.0, key,
                                   options.part).begin(resume)
        done, first = segments.done, segments.start
        if segments.complete:
            log.info(f"{output.name}: part {segments.part.first} is already done")
            return done - first
        if done > first:
            log.info(f"resuming {output.name}: {done} frames already done, continuing from there")
        loop = FilmLoop(engine, references, options.batch_size, options.shot_threshold,
                        starts_segment=segments.starts_segment, skip=done, stop=segments.stop)
        report = ShotReport(colourfulness=options.report or options.part is not None)
        bar = console.progress(info.frames or None, source.name)
        bar.update(done)
        encoder = Background(lambda job: segments.write(*job), name="vidcolor-encode") if options.overlap else None

        def frames():
            for item in reader.frames():
                if item.index == 0 and item.colour:
                    log.info(f"{source.name} is in colour: its luminance is used and its colour replaced")
                yield item

        try:
            for batch in loop.run(frames()):
                for frame, image in zip(batch.frames, batch.rgb):
                    job = (frame.index, image, frame.pts, frame.rotation)
                    encoder.put(job) if encoder is not None else segments.write(*job)
                written += len(batch.frames)
                report.add(batch, references.name(batch.choice))
                bar.update(len(batch.frames))
                bar.set_postfix_str(shot_progress(batch.shot, references.name(batch.choice)), refresh=False)
            if encoder is not None:
                encoder.finish()
            report.close()
            references.check_unused(loop.shots)
            if written + done == 0:  # an input problem, not an output one (the writer would say so)
                unreadable = reader.bad_frames or reader.damaged
                reason = "no frame could be decoded" if unreadable else "no frames in the chosen range"
                raise InputError(f"{source}: {reason}")
            if options.part is not None:
                segments.finish_part(ended=not loop.stopped, shots=report.as_dicts(), model=engine.colorizer.name)
            segments.close_segment()
        except OSError as e:  # writing a segment: a full disk, a folder that went away
            if encoder is not None:
                encoder.stop()
            segments.abandon()
            converted = as_output_error(e, output, kept=bool(segments.segments))
            if converted is e:
                raise
            raise converted from None
        except BaseException:
            if encoder is not None:
                encoder.stop()
            segments.abandon()
            raise
        finally:
            bar.close()
    if options.part is not None:
        log.info(f"{output.name}: part {options.part.first}: {written + done - first} frames")
        return written + done - first
    with atomic_output(output) as tmp:
        segments.join(tmp, options.start, options.end)
    segments.remove()
    if options.report:
        report.write(report_path(output), film=source.name, output=output.name, model=engine.colorizer.name,
                     frames=written + done, resumed_from=done)
    log.info(f"{output}: {written + done} frames")
    return written + done


def join_parts(source: Path, output: Path, options: VideoOptions) -> int:
    """Write ``output`` from the complete parts in its resume folder (each made by
    ``colorize_video`` with ``options.part``; ``vidcolor.io.segments``); returns its frames.
    ``options.report``: the shots of every part in one report beside it."""
    with VideoReader(source, start=options.start, end=options.end, copy=False) as reader:
        info = reader.info
    segments = SegmentedOutput.from_parts(output, info, options.codec, options.crf, options.start or 0.0)
    with atomic_output(output) as tmp:
        segments.join(tmp, options.start, options.end)
    segments.remove()
    frames = sum(s["frames"] for s in segments.segments)
    if options.report:
        write_report(report_path(output), segments.shots, film=source.name, output=output.name, model=segments.model,
                     frames=frames, resumed_from=0)
    log.info(f"{output}: {frames} frames")
    return frames


# -- photos -------------------------------------------------------------------------------


def load_grey(path: Path) -> np.ndarray:
    """A picture's grey levels (uint8 or uint16); a colour one's luminance, with a note."""
    return read_picture(path).grey


def colorize_grey(grey: np.ndarray, engine: Engine, refs: ReferenceSet | None, prepared: dict,
                  out: np.ndarray | None = None) -> tuple[np.ndarray, int, float]:
    """Colour one image's grey levels with the reference most like it; ``prepared`` keeps
    each reference's preparation for the next image. Returns the RGB image (uint8, or
    written into ``out`` ``(H, W, 3)``, see ``Engine.colorize``), the index of the reference
    used (-1 for automatic models) and its similarity."""
    index, score = (-1, 0.0) if refs is None or not len(refs) else refs.choose(grey)
    if index not in prepared:
        prepared[index] = engine.prepare(refs.references[index].rgb if index >= 0 else None)
    rgb = engine.colorize([grey], prepared[index], out=None if out is None else out[None])
    return rgb[0], index, score


def sample_paths(output: Path, samples: int) -> list[Path]:
    """``photo.png`` -> ``photo_s1.png``, ``photo_s2.png``, ... (itself for one sample)."""
    if samples <= 1:
        return [output]
    return [output.with_name(f"{output.stem}_s{k}{output.suffix}") for k in range(1, samples + 1)]


def colorize_image(source: Path, output: Path, engine: Engine, refs: ReferenceSet | None, prepared: dict | None = None,
                   samples: int = 1) -> None:
    """Colour one picture into ``output``; with ``samples`` > 1 (models that sample), that
    many different colorizations into ``sample_paths(output, samples)``. PNG and TIFF keep
    a 16-bit picture's depth and its alpha. The colours go straight into the image written,
    so a large picture needs little more than its grey levels and its output in memory."""
    picture = read_picture(source)
    grey = picture.grey
    image = blank_image(output, grey.shape, grey.dtype, picture.alpha)
    del picture
    if samples > 1:
        rgb = rgb_channels(image)[None]
        for path, _ in zip(sample_paths(output, samples), engine.colorize_samples([grey], samples, rgb)):
            write_pixels(path, image)
        return
    _, index, score = colorize_grey(grey, engine, refs, {} if prepared is None else prepared, rgb_channels(image))
    if refs is not None and len(refs) > 1:
        log.info(f"{source.name}: reference {refs.references[index].name} (similarity {score:.2f})")
    write_pixels(output, image)


def colorize_folder(source: Path, output: Path, engine: Engine, refs: ReferenceSet | None, overwrite: bool,
                    samples: int = 1) -> int:
    """Colorize every image under ``source`` into the same tree under ``output``. Images
    whose output already exists are kept (so an interrupted run resumes) unless
    ``overwrite``. An image that cannot be read is reported in one line and the others are
    still done; then an ``InputError`` counts the failures. Returns the number of images
    written."""
    images, others = list_images(source)
    inside = output.resolve()
    images = [p for p in images if not p.resolve().is_relative_to(inside)]  # an output folder within the input
    films = [p for p in others if p.suffix.lower() in VIDEO_SUFFIXES]
    for other in others:
        log.warning(f"skipping {other.relative_to(source)}: {'a film' if other in films else 'not an image'}")
    if films:
        log.info(f"'vidcolor batch {source} -o DIR' colours the films of a folder too")
    if not images:
        raise InputError(f"{source}: no images in this folder" + (" ('vidcolor batch' colours its films)" if films else ""))
    sources = {p.resolve() for p in images}
    prepared: dict = {}
    todo = []
    for image in images:
        target = output / image.relative_to(source).with_suffix(_image_suffix(image))
        if any(p.resolve() in sources for p in sample_paths(target, samples)):
            raise OutputError(f"{target}: the output would replace an input image; choose another -o")
        if all(p.exists() for p in sample_paths(target, samples)) and not overwrite:
            continue
        todo.append((image, target))
    if len(todo) < len(images):
        log.info(f"{len(images) - len(todo)} image(s) already done in {output}; continuing with the rest")
    failed = 0
    with console.progress(len(todo), source.name, unit="images") as bar:
        for image, target in todo:
            try:
                colorize_image(image, target, engine, refs, prepared, samples)
            except InputError as e:
                stopping.raise_if_interrupted()
                failed += 1
                log.error(str(e))
            bar.update(1)
    if failed:
        raise InputError(f"{failed} of {len(todo)} images could not be coloured (each named above); "
                         f"the other {len(todo) - failed} are in {output}")
    return len(todo)


def _image_suffix(path: Path) -> str:
    """An image's own suffix where it can be written in its format, else ``.png``."""
    return path.suffix if path.suffix.lower() in WRITE_SUFFIXES else ".png"
