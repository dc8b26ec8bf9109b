"""The Python API: what the ``vidcolor`` command does, as four functions.

    import vidcolor

    vidcolor.colorize("film.mp4", reference="ref.jpg")        # -> Path("film_color.mp4")
    vidcolor.colorize("photos/", auto=True)                     # -> Path("photos_color")
    vidcolor.colorize("film.mp4", "out.mp4", part=(0, 60))      # segments 0-59 only (a batch's worker)
    vidcolor.join_parts("film.mp4", "out.mp4")                  # the film, once every part is done
    colorizer = vidcolor.create("transfer", reference="ref.jpg")
    rgb = colorizer(grey)                                       # uint8 (N, H, W) -> uint8 (N, H, W, 3)
    vidcolor.list_models()                                      # every model, and whether it has weights

Errors are the exceptions of ``vidcolor.errors`` (the command prints their one line).
Importing this module imports no PyTorch: the work imports it when it starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

from vidcolor.errors import InputError, ModelError, ReferenceImageError

if TYPE_CHECKING:
    import numpy as np

PathLike = Union[str, Path]
MAX_BATCH = 256  # a batch's frames are all in memory at full size
DEFAULT_MODEL = "exemplar"  # with a reference, where its weights are installed (BENCHMARKS.md, 11)
AUTO_MODES = ("keyframes", "per-frame")  # films in automatic mode (``auto_mode``)
FALLBACK_MODEL = "transfer"  # with a reference, without them
GALLERY_VARIABLE = "VIDCOLOR_GALLERY"


def colorize(
    source: PathLike,
    output: PathLike | None = None,
    *,
    reference: PathLike | Sequence[PathLike] | None = None,
    auto: bool = False,
    model: str | None = None,
    weights: PathLike | None = None,
    device: str = "auto",
    auto_reference: bool = False,
    gallery: PathLike | None = None,
    temporal: str = "smooth",
    work_res: int = 256,
    batch_size: int = 4,
    codec: str = "libx264",
    crf: int = 18,
    start: float | str | None = None,
    end: float | str | None = None,
    shot_threshold: float | None = None,
    preview: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    report: bool = False,
    decode: str | None = None,
    temperature: float | None = None,
    hints: PathLike | None = None,
    global_hint: PathLike | None = None,
    saturation: float | None = None,
    samples: int | None = None,
    seed: int | None = None,
    post: str | None = None,
    auto_mode: str = "keyframes",
    key_every: float = 4.0,
    part: tuple[int, int | None] | None = None,
) -> Path:
    """Colour a film, a photo or a folder of photos; returns the output's path (with
    ``samples`` > 1 the first sample's). The defaults, the checks and the safety are the
    command's: see ``vidcolor --help`` and the README (films are resumable with ``resume``,
    every output is written whole, then renamed). ``report``: a film's shots, each with its
    reference and match confidence, in a JSON file beside the output. ``auto_mode``: a film
    in automatic mode is coloured by ``keyframes`` (coloured by the automatic network, carried
    through each shot by the exemplar network: ``vidcolor.film.keyframes``; at least one every
    ``key_every`` seconds) or ``per-frame``; keyframes need the exemplar network's weights.
    ``part=(first, end)``: colour only a film's segments ``first`` to ``end`` (excluded; None:
    to the end) into its resume folder, as a worker of a batch does; :func:`join_parts` then
    writes the film (``vidcolor.io.segments``)."""
    from vidcolor.colorizers import guidance
    from vidcolor.film.engine import Engine
    from vidcolor.film.pipeline import VideoOptions, colorize_folder, colorize_image, colorize_video, default_output
    from vidcolor.film.preview import write_preview
    from vidcolor.film.references import folder_references, gather_references, keyframe_mapping
    from vidcolor.film.shots import DEFAULT_THRESHOLD
    from vidcolor.film.temporal import MODES, engine_flags
    from vidcolor.io.atomic import output_lock
    from vidcolor.io.content import identity
    from vidcolor.io.images import is_image_path
    from vidcolor.io.segments import Part

    source = Path(source)
    references = [Path(r) for r in ([] if reference is None else [reference] if isinstance(reference, (str, Path))
                                    else reference)]
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    t0, t1 = seconds(start, "start"), seconds(end, "end")
    if t0 is not None and t1 is not None and t1 <= t0:
        raise InputError("`end` must come after `start`")
    if not 1 <= batch_size <= MAX_BATCH:
        raise InputError(f"`batch_size` must be between 1 and {MAX_BATCH} (frames held at once)")
    shot_threshold = DEFAULT_THRESHOLD if shot_threshold is None else shot_threshold
    if not 0.0 < shot_threshold <= 1.0:
        raise InputError("`shot_threshold` must be in (0, 1]")
    if temporal not in MODES:
        raise InputError(f"`temporal={temporal}`: choose {', '.join(MODES)}")
    if auto_mode not in AUTO_MODES:
        raise InputError(f"`auto_mode={auto_mode}`: choose {', '.join(AUTO_MODES)}")
    if not key_every > 0:
        raise InputError("`key_every` must be a positive number of seconds")
    if auto_reference:
        if references:
            raise InputError("`auto_reference` picks references from `gallery`; leave out `reference`")
        gallery = gallery or os.environ.get(GALLERY_VARIABLE) or None
        if gallery is None:
            raise ReferenceImageError(f"`auto_reference` needs a folder of colour images: `gallery=DIR` (or {GALLERY_VARIABLE})")
    name = choose_model(model, auto, bool(references) or auto_reference)
    # a folder of references is searched as a gallery when the model has deep features; a
    # folder of keyframes exported by `vidcolor shots` maps each shot to its own
    searched = Path(gallery) if auto_reference else (
        references[0] if len(references) == 1 and references[0].is_dir() and not keyframe_mapping(references[0]) else None)
    refs = gather_references(references) if references and searched is None else None
    film = not source.is_dir() and not is_image_path(source)
    if report and (not film or preview):
        raise InputError("`report` describes a film's shots: give a film, without `preview`")
    target = Path(output) if output is not None else default_output(source)
    if preview:
        target = target if target.suffix.lower() == ".png" else target.with_name(target.stem + "_preview.png")
    _check_target(source, target, overwrite, folder=source.is_dir() and not preview,
                  encoder=(codec, crf) if film and not preview else None)
    guide = guidance.build(name, source, decode, temperature, hints, global_hint, saturation, samples, seed,
                           several_pictures=not film and not preview, post=post)
    if part is not None and (not film or preview or len(part) != 2 or part[0] < 0
                             or (part[1] is not None and part[1] <= part[0])):
        raise InputError("`part` is a range of a film's segments: (first, end) with end after first, or None")
    lock = target if part is None else target.with_name(f"{target.name}.part-{part[0]:06d}")
    with output_lock(lock):  # a second run writing the same output (or part) is refused
        engine = Engine(name, device=device, work_res=work_res, weights=weights, options=guide, **engine_flags(temporal))
        if searched is not None:
            refs = folder_references(searched, engine, always_recommend=auto_reference)
        if preview:
            write_preview(source, target, engine, refs, start=t0, end=t1)
        elif source.is_dir():
            colorize_folder(source, target, engine, refs, overwrite, samples or 1)
        elif not film:
            colorize_image(source, target, engine, refs, samples=samples or 1)
        else:
            options = VideoOptions(codec=codec, crf=crf, start=t0, end=t1, batch_size=batch_size,
                                   shot_threshold=shot_threshold, report=report,
                                   part=None if part is None else Part(*part))
            settings = {  # what else decides the colours: a resumed run must share it (files by content)
                "model": name, "weights": identity(Path(weights)) if weights else "installed",
                "references": [identity(r) for r in references],
                "gallery": identity(Path(gallery)) if auto_reference else None,
                "work_res": work_res, "temporal": temporal, "shot_threshold": shot_threshold,
                "guidance": [decode, temperature, *(identity(Path(p)) if p else None for p in (hints, global_hint)),
                             saturation, seed, post],
            }
            strategy = None
            if not engine.needs_reference and auto_mode == "keyframes":
                strategy = keyframe_strategy(engine, device, work_res, temporal, key_every)
                settings.update(auto_mode=auto_mode if strategy is not None else "per-frame", key_every=key_every)
            colorize_video(source, target, strategy.engine if strategy is not None else engine, refs, options,
                           resume=resume, settings=settings, strategy=strategy)
    return target


def join_parts(source: PathLike, output: PathLike, *, codec: str = "libx264", crf: int = 18,
               start: float | str | None = None, end: float | str | None = None, report: bool = False,
               overwrite: bool = False) -> Path:
    """Write a film coloured in parts (``colorize(..., part=...)`` for every range of its
    segments, with the same options) from its resume folder; returns the output's path.
    Refused while a part is missing, unfinished or made with other settings."""
    from vidcolor.film.pipeline import VideoOptions, join_parts as join
    from vidcolor.io.atomic import output_lock

    source, target = Path(source), Path(output)
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    _check_target(source, target, overwrite, folder=False, encoder=(codec, crf))
    with output_lock(target):
        join(source, target, VideoOptions(codec=codec, crf=crf, start=seconds(start, "start"), end=seconds(end, "end"),
                                          report=report))
    return target


def keyframe_strategy(auto, device: str, work_res: int, temporal: str, key_every: float):
    """Automatic keyframes carried by the exemplar network (``AutoKeyframes``), or None (with a
    note: the film is coloured frame by frame) where its weights are not installed."""
    from vidcolor.film.engine import Engine
    from vidcolor.film.keyframes import AutoKeyframes
    from vidcolor.film.temporal import engine_flags
    from vidcolor.console import log
    from vidcolor.models.weights import default_weights

    if default_weights(DEFAULT_MODEL) is None:
        log.info(f"the {DEFAULT_MODEL} network's weights are not installed: the film is coloured frame by frame")
        return None
    propagate = Engine(DEFAULT_MODEL, device=device, work_res=work_res, **engine_flags(temporal))
    return AutoKeyframes(propagate, auto, key_every)


def _check_target(source: Path, target: Path, overwrite: bool, folder: bool, encoder: tuple[str, int] | None) -> None:
    """Refuse, before any work, an output that cannot or must not be written."""
    from vidcolor.io.atomic import check_output, check_output_folder
    from vidcolor.io.video_writer import check_encoder

    if folder:
        check_output_folder(target, source)
    else:
        check_output(target, overwrite, (source,))
    if encoder is not None:
        check_encoder(*encoder, target)


def seconds(value: float | str | None, name: str) -> float | None:
    """Seconds (``12.5``) or ``[HH:]MM:SS[.mmm]`` -> seconds; None stays None. ``name``: the
    parameter, for the error."""
    if value is None:
        return None
    try:
        total = 0.0
        for part in str(value).split(":"):
            total = total * 60 + float(part)
    except ValueError:
        raise InputError(f"`{name}={value}`: give seconds (12.5) or [HH:]MM:SS[.mmm]") from None
    if not math.isfinite(total):
        raise InputError(f"`{name}={value}`: give a finite time, in seconds (12.5) or [HH:]MM:SS[.mmm]")
    if total < 0:
        raise InputError(f"`{name}` must not be negative")
    return total


def choose_model(model: str | None, auto: bool, has_references: bool) -> str:
    """The model to run: the one named, else the default: with a reference, the exemplar
    network where its weights are installed, else ``transfer``; with ``auto``, the best
    measured automatic network with weights installed."""
    from vidcolor import colorizers

    if auto:
        if has_references:
            raise ModelError("`auto` colorizes without a reference; leave out `reference` or `auto`")
        if model is None:
            best = colorizers.best_automatic()
            if best is None:
                raise ModelError(
                    f"no automatic model has weights installed; import the authors' ('vidcolor weights import NAME "
                    f"FILE'), train one ('vidcolor train NAME'), or choose one of "
                    f"{', '.join(colorizers.names(automatic=True))} with `model` and `weights`"
                )
            return best
    name = model or default_reference_model()
    built = colorizers.names()
    if name not in built:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(built)}")
    automatic_model = name in colorizers.names(automatic=True)
    if automatic_model and has_references:
        raise ModelError(f"model {name!r} colorizes without a reference; leave out `reference`")
    if not automatic_model and not has_references:
        raise ReferenceImageError(f"model {name!r} colours from a reference: pass `reference=IMAGE` (or use `auto`)")
    return name


def default_reference_model() -> str:
    """The model that colours from a reference when none is named: the exemplar network
    where its weights are installed (on a GPU and, since it tracks the frames of a shot, on
    the CPU too: it beats ``transfer`` in both reference modes at over 2 frames/s, BENCHMARKS.md
    11), else ``transfer``."""
    from vidcolor.models.weights import default_weights

    return DEFAULT_MODEL if default_weights(DEFAULT_MODEL) is not None else FALLBACK_MODEL


# -- numpy frames -----------------------------------------------------------------------------


class FrameColorizer:
    """Colours numpy frames: grey levels ``(N, H, W)`` (or one ``(H, W)``), uint8 or uint16,
    in; uint8 RGB ``(N, H, W, 3)`` (or ``(H, W, 3)``) out. Models that colour from a
    reference take it once (``reference=`` of :func:`create`, or :meth:`set_reference`).
    ``sequence=True`` says the frames follow the previous call's (a film): the temporal
    smoothing then carries colour over; :meth:`new_shot` starts afresh."""

    def __init__(self, engine, reference: PathLike | np.ndarray | None = None):
        self.engine = engine
        self._prepared = None
        if reference is not None or not engine.needs_reference:
            self.set_reference(reference)

    @property
    def name(self) -> str:
        return self.engine.colorizer.name

    def set_reference(self, reference: PathLike | np.ndarray | None) -> None:
        """The colour reference: an image file, or uint8 RGB ``(H, W, 3)``."""
        import numpy as np

        from vidcolor.film.references import load_reference

        if reference is None and self.engine.needs_reference:
            raise ReferenceImageError(f"model {self.name!r} colours from a reference: give one")
        if reference is not None and not isinstance(reference, np.ndarray):
            reference = load_reference(Path(reference)).rgb
        self._prepared = self.engine.prepare(reference)
        self.engine.new_shot()

    def new_shot(self) -> None:
        self.engine.new_shot()

    def __call__(self, grey: np.ndarray, sequence: bool = False) -> np.ndarray:
        import numpy as np

        if self._prepared is None:
            raise ReferenceImageError(f"model {self.name!r} colours from a reference: call set_reference first")
        grey = np.asarray(grey)
        if grey.dtype not in (np.uint8, np.uint16) or grey.ndim not in (2, 3):
            raise InputError(f"grey frames are uint8 or uint16 (N, H, W) or (H, W), not {grey.dtype} {grey.shape}")
        frames = grey[None] if grey.ndim == 2 else grey
        rgb = self.engine.colorize(list(frames), self._prepared, sequence=sequence)
        return rgb[0] if grey.ndim == 2 else rgb


def create(name: str | None = None, weights: PathLike | None = None, device: str = "auto", *,
           reference: PathLike | np.ndarray | None = None, temporal: str = "none", work_res: int = 256,
           **options) -> FrameColorizer:
    """A colorizer of numpy frames by model name (default: as ``colorize``'s with a reference);
    ``options`` are the
    automatic networks' guidance (``decode``, ``temperature``, ``global_hint``, ``saturation``,
    ``seed``) and devc's ``post``, as in :func:`colorize` (hints belong to one picture: give
    them to ``colorize``)."""
    from vidcolor.colorizers import guidance
    from vidcolor.film.engine import Engine
    from vidcolor.film.temporal import MODES, engine_flags

    name = name or default_reference_model()
    if temporal not in MODES:
        raise InputError(f"`temporal={temporal}`: choose {', '.join(MODES)}")
    unknown = sorted(set(options) - {"decode", "temperature", "global_hint", "saturation", "seed", "post"})
    if unknown:
        raise InputError(f"unknown option {unknown[0]!r} for create()")
    guide = guidance.build(name, None, **options)
    engine = Engine(name, device=device, work_res=work_res, weights=weights, options=guide, **engine_flags(temporal))
    return FrameColorizer(engine, reference)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    automatic: bool  # colours without a reference
    takes_weights: bool  # runs trained weights
    installed: bool  # weights are installed (always True for models without weights)


def list_models() -> list[ModelInfo]:
    """Every model, and whether it can run as it is (weights installed where it needs them)."""
    from vidcolor import colorizers
    from vidcolor.colorizers.base import COLORIZERS
    from vidcolor.models.weights import default_weights

    found = []
    for name in colorizers.names():
        cls = COLORIZERS.get(name)
        installed = not cls.takes_weights or default_weights(name) is not None
        found.append(ModelInfo(name, not cls.needs_reference, cls.takes_weights, installed))
    return found
