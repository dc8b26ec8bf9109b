"""Colorizing films, photos and folders: decode -> frames -> colorizer -> encode.

Films stream through in batches into resumable segments, joined with the source's audio
at the end; the per-shot reference plan (when there are several references) comes from one
earlier pass of the shot detector. Every output is written to a temporary file and renamed
when complete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidcolor import console
from vidcolor.io.atomic import as_output_error, atomic_output
from vidcolor.film.background import Background
from vidcolor.film.engine import Engine
from vidcolor.errors import InputError, OutputError
from vidcolor.io.images import (WRITE_SUFFIXES, blank_image, is_image_path, list_images, read_picture, rgb_channels,
                             write_pixels)
from vidcolor.film.references import ReferenceSet
from vidcolor.io.segments import SEGMENT_SECONDS, SegmentedOutput, fingerprint
from vidcolor.film.shots import DEFAULT_THRESHOLD, Shot, scan_shots
from vidcolor.io.video_reader import Frame, VideoReader
from vidcolor.io.video_writer import DEFAULT_CODEC

log = logging.getLogger("vidcolor")


@dataclass
class VideoOptions:
    codec: str = DEFAULT_CODEC
    crf: int = 18
    start: float | None = None
    end: float | None = None
    batch_size: int = 4
    shot_threshold: float = DEFAULT_THRESHOLD
    overlap: bool = True  # encode in a thread of its own while the next batch is colorized


def default_output(source: Path) -> Path:
    """``film.mp4`` -> ``film_color.mp4``; ``photos/`` -> ``photos_color/``; images that
    cannot be written in their own format become PNG."""
    if source.is_dir():
        return source.with_name(source.name + "_color")
    suffix = _image_suffix(source) if is_image_path(source) else source.suffix
    return source.with_name(f"{source.stem}_color{suffix}")


# -- references per shot ------------------------------------------------------------------


@dataclass
class ReferencePlan:
    """Which reference each frame gets: shot starts (frame indices) and their reference."""

    starts: list[int]
    choice: list[int]

    def shot_at(self, frame_index: int) -> int:
        return max(0, int(np.searchsorted(self.starts, frame_index, side="right")) - 1)

    def reference_at(self, frame_index: int) -> int:
        return self.choice[self.shot_at(frame_index)]


def shot_progress(plan: ReferencePlan | None, index: int, total: int, rate: float | None) -> str:
    """``shot 3/7, 0:42 left in it`` for the frame ``index`` at ``rate`` frames per second
    (no time before a rate is known); empty when the shots are not known."""
    if plan is None or len(plan.starts) < 2:
        return ""
    shot = plan.shot_at(index)
    end = plan.starts[shot + 1] if shot + 1 < len(plan.starts) else total
    text = f"shot {shot + 1}/{len(plan.starts)}"
    if rate and end > index:
        seconds = int((end - index) / rate)
        text += f", {seconds // 60}:{seconds % 60:02d} left in it"
    return text


def plan_references(source: Path, refs: ReferenceSet, options: VideoOptions) -> ReferencePlan:
    """One reference for all shots, or a shot scan choosing the best (or mapped) one."""
    if not refs.needs_shots:
        return ReferencePlan([0], [refs.mapping.get(0, 0)])
    choice: list[int] = []
    starts: list[int] = []

    def choose(shot: Shot, grey: np.ndarray) -> None:
        if shot.index in refs.mapping:
            best, how = refs.mapping[shot.index], "mapped"
        else:
            best, score = refs.choose(grey)
            how = f"best match, similarity {score:.2f}"
        starts.append(shot.start_frame)
        choice.append(best)
        log.info(f"shot {shot.index} (from {shot.start_time:.2f} s): reference {refs.references[best].name} ({how})")

    with console.progress(None, f"shots {source.name}") as bar:
        scan_shots(source, options.shot_threshold, options.start, options.end, on_keyframe=choose, progress=bar.update)
    unused = sorted(shot for shot in refs.mapping if shot >= len(starts))
    if unused:
        log.warning(f"the reference mapping names shot {', '.join(map(str, unused))}, but the film has "
                    f"{len(starts)} shot(s), 0 to {len(starts) - 1}: not used")
    return ReferencePlan(starts, choice)


# -- films --------------------------------------------------------------------------------


def colorize_video(source: Path, output: Path, engine: Engine, refs: ReferenceSet | None, options: VideoOptions,
                   resume: bool = False, settings: dict | None = None) -> int:
    """Colorize a film into ``output``; returns the number of frames written. The frames go
    into resumable segments (``vidcolor.io.segments``); ``resume`` continues an interrupted
    run made with the same ``settings`` (what else decides the colours: model, weights,
    references...)."""
    plan = plan_references(source, refs, options) if refs is not None and len(refs) else None
    prepared: dict[int, object] = {}

    def prepared_for(index: int):
        if index not in prepared:
            rgb = refs.references[index].rgb if plan is not None else None
            prepared[index] = engine.prepare(rgb)
        return prepared[index]

    key = fingerprint(source, {**(settings or {}), "codec": options.codec, "crf": options.crf, "start": options.start,
                               "end": options.end, "segment_seconds": SEGMENT_SECONDS})
    written = 0
    with VideoReader(source, start=options.start, end=options.end, copy=False) as reader:
        info = reader.info
        segments = SegmentedOutput(output, info, options.codec, options.crf, options.start or 0.0, key, resume,
                                   round(SEGMENT_SECONDS * float(info.rate)))
        done = segments.done
        if done:
            log.info(f"resuming {output.name}: {done} frames already done, continuing from there")
        batch: list[Frame] = []
        batch_ref = -1
        bar = console.progress(info.frames or None, source.name)
        bar.update(done)
        encoder = Background(lambda job: segments.write(*job), name="vidcolor-encode") if options.overlap else None

        def flush() -> None:
            nonlocal written
            if not batch:
                return
            rgb = engine.colorize([f.grey for f in batch], prepared_for(batch_ref), sequence=True)
            for frame, image in zip(batch, rgb):
                job = (frame.index, image, frame.pts, frame.rotation)
                encoder.put(job) if encoder is not None else segments.write(*job)
            written += len(batch)
            bar.update(len(batch))
            shot = shot_progress(plan, batch[-1].index + 1, info.frames, bar.format_dict.get("rate"))
            if shot:
                bar.set_postfix_str(shot, refresh=False)
            batch.clear()

        try:
            for item in reader.frames():
                if item.index == 0 and item.colour:
                    log.info(f"{source.name} is in colour: its luminance is used and its colour replaced")
                if item.index < done:
                    continue
                ref = plan.reference_at(item.index) if plan is not None else 0
                fresh = segments.starts_segment(item.index)
                if batch and (ref != batch_ref or len(batch) >= options.batch_size or fresh):
                    flush()
                if fresh:
                    engine.new_shot()  # every segment starts afresh, so a resumed film is the same
                batch.append(item)
                batch_ref = ref
            flush()
            if encoder is not None:
                encoder.finish()
            if written + done == 0:  # an input problem, not an output one (the writer would say so)
                unreadable = reader.bad_frames or reader.damaged
                reason = "no frame could be decoded" if unreadable else "no frames in the chosen range"
                raise InputError(f"{source}: {reason}")
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
    with atomic_output(output) as tmp:
        segments.join(tmp, options.start, options.end)
    segments.remove()
    log.info(f"{output}: {written + done} frames")
    return written + done


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
    for other in others:
        log.warning(f"skipping {other.relative_to(source)}: not an image")
    if not images:
        raise InputError(f"{source}: no images in this folder")
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
