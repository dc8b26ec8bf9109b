"""``vidcolor eval``: colorization quality and speed on colour originals, with baselines.

Every video (.mp4, .avi, .mkv, .mov) and photo under DATA (recursive, sorted, hidden files
skipped) is a colour original. It is turned grey the way the evaluation protocol says
(CIE Lab L of the sRGB original, D65, as the grey levels of the same L:
:func:`vidcolor.ops.color.rgb_to_grey_levels`), colorized by the same :class:`Engine` as
``vidcolor`` (colour predicted at ``work_res``, guided upsampling, full-resolution L kept),
and compared with the original (see :mod:`vidcolor.eval.metrics` for every formula). The report and its table are
:mod:`vidcolor.eval.report`'s, the contact sheet :mod:`vidcolor.eval.sheets`'.

References (``reference_mode``):

- ``keyframe``: the reference of each shot of a video (the shots as the film loop finds
  them, see below) is the ORIGINAL colour of its first frame. A photo is its own keyframe:
  its reference is the original photo itself (an upper bound for exemplar methods, not a
  realistic setting).
- ``exemplar``: the reference of an item is a different item of the data set: the first
  frame of the next item in sorted order (the next photo for photos, the next clip's first
  frame for videos; the last item takes the first one's), used for every shot of the item.
  The data set needs at least two items. Score it on realism (colourfulness) and
  faithfulness as well as PSNR.
- ``none``: automatic models only; no reference, so no colour-transfer baseline.

Baselines, computed in the same run from the same grey frames and reported beside the model:

- ``grey``: no colour (ab = 0 with the original L);
- ``reinhard``: global colour transfer from the reference (Reinhard et al. 2001): for a grey
  target the transfer of the ab statistics gives the reference's mean ab everywhere (the
  target's ab has no spread), with the original L;
- ``per_frame`` (videos): the model's own output of each frame, before the temporal
  smoothing stage (``temporal`` smooth or both); without that stage it is the model's
  output itself, reported and marked as identical.

Videos are coloured by the film loop of ``vidcolor FILM`` (:mod:`vidcolor.film.loop`), so
the frames measured are the frames a user gets from the same grey frames and options: the
shots are found on the way by the shot detector of ``vidcolor shots`` (same threshold),
the temporal state restarts at every cut and at every segment start (every
``SEGMENT_SECONDS`` of the film, as in a resumable film), batches of ``batch_size`` frames
never cross either. Videos stream: frames are decoded once, and only the shot detector's
look-ahead (five frames), one batch, the current reference and the last frames the video
metrics need are in memory, whatever the film's length. Speed: the time of the model (reference preparation
and colorization, not decoding or scoring) per frame is reported as ``model_fps``.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidcolor import colorizers, console, stopping
from vidcolor.errors import InputError, ModelError
from vidcolor.eval.metrics import AbScorer, FlowTracker, VideoScorer, colourfulness, lab_of, psnr, ssim
from vidcolor.eval.report import IMAGE_METRICS, METHODS, NOTES, VIDEO_METRICS, build_report, format_table, write_json
from vidcolor.eval.sheets import write_sheet
from vidcolor.film.engine import Engine
from vidcolor.film.loop import FilmLoop, FixedReference, segment_starts
from vidcolor.film.shots import DEFAULT_THRESHOLD, Shot
from vidcolor.film.temporal import DEFAULT_MODE, MODES, engine_flags
from vidcolor.io.images import read_rgb
from vidcolor.io.media import Item, find_items, first_frame, frame_count, video_frames
from vidcolor.io.video_reader import VideoReader
from vidcolor.ops.color import compose_rgb, grey_to_lightness, rgb_to_grey_levels
from vidcolor.console import log

__all__ = ["DEFAULT_THRESHOLD", "IMAGE_METRICS", "METHODS", "NOTES", "REFERENCE_MODES", "VIDEO_METRICS", "Evaluation",
           "ItemRun", "build_report", "evaluate", "format_table", "write_json", "write_sheet", "_report"]


REFERENCE_MODES = ("keyframe", "exemplar", "none")
_report = build_report  # the name the benchmarks use


# -- scoring ------------------------------------------------------------------------------


class MethodScores:
    """Every figure of one method (or of the original) on one item, accumulated per frame."""

    def __init__(self, video: bool):
        self.psnr: list[float] = []
        self.ssim: list[float] = []
        self.colourfulness: list[float] = []
        self.ab = AbScorer()
        self.video = VideoScorer() if video else None

    def update(self, original: np.ndarray, output: np.ndarray, original_lab: torch.Tensor, device, flow) -> None:
        self.psnr.append(psnr(output, original))
        self.ssim.append(ssim(output, original, device=device))
        self.colourfulness.append(colourfulness(output))
        self.ab.update(lab_of(output, device), original_lab)
        if self.video is not None:
            self.video.update(original, output, flow=flow)

    def figures(self, prior: np.ndarray | None) -> dict:
        out = {
            "psnr": float(np.mean(self.psnr)),
            "ssim": float(np.mean(self.ssim)),
            "ab_error": self.ab.mean_ab_error(),
            "auc": self.ab.auc(),
            "auc_rebalanced": self.ab.auc_rebalanced(prior),
            "colourfulness": float(np.mean(self.colourfulness)),
        }
        if self.video is not None:
            out.update(warp_error=self.video.warp_error(), cdc=self.video.cdc())
        return out


class OriginalScores:
    """Colourfulness (and for video, warp error and CDC) of the original itself."""

    def __init__(self, video: bool):
        self.colourfulness: list[float] = []
        self.video = VideoScorer() if video else None

    def update(self, original: np.ndarray, flow) -> None:
        self.colourfulness.append(colourfulness(original))
        if self.video is not None:
            self.video.update(original, original, flow=flow)

    def figures(self) -> dict:
        out = {"colourfulness": float(np.mean(self.colourfulness))}
        if self.video is not None:
            out.update(warp_error=self.video.warp_error(), cdc=self.video.cdc())
        return out


@dataclass
class ItemRun:
    """The state of one item while it is evaluated."""

    item: Item
    methods: dict[str, MethodScores]
    original: OriginalScores
    flows: FlowTracker | None
    frames: int = 0
    shots: int = 0
    width: int = 0
    height: int = 0
    model_seconds: float = 0.0
    sheet: dict[str, np.ndarray] | None = None
    sheet_frame: int = -1
    confidence: list[float] = field(default_factory=list)  # per frame, for models that know it


@dataclass
class Original:
    """A frame of an original video, as the film loop takes it."""

    index: int
    time: float
    grey: np.ndarray
    rgb: np.ndarray


class KeyframeReferences:
    """The film loop's references in keyframe mode: each shot's own first frame, in colour."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def choose(self, shot: Shot, frame: Original) -> np.ndarray:
        return frame.rgb

    def prepare(self, choice: np.ndarray):
        return self.engine.prepare(choice)


@dataclass
class Evaluation:
    """One evaluation run: the engine, the mode, and everything gathered so far."""

    engine: Engine
    reference_mode: str
    batch_size: int = 4
    shot_threshold: float = DEFAULT_THRESHOLD
    runs: list[ItemRun] = field(default_factory=list)
    keyframes_from: Engine | None = None  # automatic keyframe mode: the automatic model's engine (``engine`` carries)
    key_every: float = 4.0

    @property
    def device(self) -> torch.device:
        return self.engine.device

    # -- references -------------------------------------------------------------------

    def _mean_ab(self, reference: np.ndarray | None) -> torch.Tensor | None:
        """The reference's mean ab (the Reinhard baseline's colour), None without one."""
        if reference is None or self.reference_mode == "none":
            return None
        return lab_of(reference, self.device)[0, 1:].mean(dim=(1, 2))

    # -- one batch of frames ----------------------------------------------------------

    def _score(self, run: ItemRun, frames: list[Original], model_out: np.ndarray, raw: np.ndarray | None,
               mean_ab, reference, sheet_target: int) -> None:
        """Score the model's output of ``frames`` (and the baselines computed here)."""
        greys = [f.grey for f in frames]
        with torch.no_grad():
            lightness = grey_to_lightness(np.stack(greys), self.device).unsqueeze(1)
            zeros = torch.zeros(lightness.shape[0], 2, *lightness.shape[-2:], device=self.device)
            outputs = {"model": model_out, "grey": compose_rgb(lightness, zeros).cpu().numpy()}
            if "per_frame" in run.methods:
                outputs["per_frame"] = raw
            if mean_ab is not None:
                outputs["reinhard"] = compose_rgb(lightness, zeros + mean_ab.view(1, 2, 1, 1)).cpu().numpy()
        originals = np.stack([f.rgb for f in frames])
        original_lab = lab_of(originals, self.device)
        for j, frame in enumerate(frames):
            rgb = frame.rgb
            flow = run.flows.push(rgb) if run.flows is not None else None
            run.original.update(rgb, flow)
            for name, output in outputs.items():
                run.methods[name].update(rgb, output[j], original_lab[j : j + 1], self.device, flow)
            if run.sheet is not None and (run.sheet_frame < 0 or frame.index == sheet_target):
                run.sheet = {"grey": frame.grey, "reference": reference, "output": model_out[j], "original": rgb}
                run.sheet_frame = frame.index
        run.frames += len(frames)

    # -- items --------------------------------------------------------------------------

    def _new_run(self, item: Item, keep_sheet: bool) -> ItemRun:
        video = item.kind == "video"
        methods = {"model": MethodScores(video), "grey": MethodScores(video)}
        if video and self.engine.smoother is not None:
            methods["per_frame"] = MethodScores(video)
        if self.reference_mode != "none":
            methods["reinhard"] = MethodScores(video)
        return ItemRun(
            item, methods, OriginalScores(video), FlowTracker() if video else None, sheet={} if keep_sheet else None
        )

    def photo(self, item: Item, exemplar: np.ndarray | None, keep_sheet: bool) -> ItemRun:
        run = self._new_run(item, keep_sheet)
        rgb = read_rgb(item.path)
        grey = rgb_to_grey_levels(rgb)
        reference = rgb if self.reference_mode == "keyframe" else exemplar
        if self.reference_mode == "none":
            reference = None
        t0 = time.perf_counter()
        engine = self.keyframes_from or self.engine  # a photo is its own keyframe
        prepared = engine.prepare(reference)
        model_out = engine.colorize([grey], prepared)
        run.model_seconds += time.perf_counter() - t0
        if engine.confidence is not None:
            run.confidence += [float(c) for c in engine.confidence]
        run.height, run.width = rgb.shape[:2]
        run.shots = 1
        self._score(run, [Original(0, 0.0, grey, rgb)], model_out, model_out, self._mean_ab(reference), reference, 0)
        return run

    def references(self, exemplar: np.ndarray | None):
        """The film loop's reference strategy for this mode."""
        if self.reference_mode == "keyframe":
            return KeyframeReferences(self.engine)
        if self.keyframes_from is not None:
            from vidcolor.film.keyframes import AutoKeyframes

            return AutoKeyframes(self.engine, self.keyframes_from, self.key_every)
        return FixedReference(self.engine, exemplar if self.reference_mode == "exemplar" else None)

    def video(self, item: Item, exemplar: np.ndarray | None, keep_sheet: bool, max_frames: int | None) -> ItemRun:
        """Colour a video's grey frames by the film loop and score them, as they are decoded."""
        run = self._new_run(item, keep_sheet)
        expected = frame_count(item.path, max_frames)
        sheet_target = max(0, (expected - 1) // 2)
        with VideoReader(item.path, copy=False) as probe:  # the frame rate as the film's own run reads it
            rate = probe.info.rate
        loop = FilmLoop(self.engine, self.references(exemplar), self.batch_size, self.shot_threshold,
                        starts_segment=segment_starts(rate), with_raw=True)
        shot, mean_ab = -1, None
        with console.progress(expected, item.name) as bar, closing(video_frames(item.path, max_frames)) as frames:

            def originals():
                for index, rgb in enumerate(frames):
                    if index == 0:
                        run.height, run.width = rgb.shape[:2]
                    yield Original(index, index / float(rate), rgb_to_grey_levels(rgb), rgb)

            for batch in loop.run(originals()):
                reference = None if self.reference_mode == "none" else batch.choice  # automatic keyframes: no picture
                if batch.shot != shot:
                    shot, mean_ab = batch.shot, self._mean_ab(reference)
                run.model_seconds += batch.seconds
                run.confidence += batch.confidence or []
                self._score(run, batch.frames, batch.rgb, batch.raw, mean_ab, reference, sheet_target)
                bar.update(len(batch.frames))
        run.shots = loop.shots
        if run.frames == 0:
            raise InputError(f"{item.path}: no frames")
        return run


# -- the whole run -----------------------------------------------------------------------------


def evaluate(
    data_dir: Path,
    model: str,
    reference_mode: str = "keyframe",
    device: str = "auto",
    work_res: int = 256,
    max_frames: int | None = None,
    batch_size: int = 4,
    shot_threshold: float = DEFAULT_THRESHOLD,
    sheet: Path | None = None,
    sheet_items: int = 4,
    weights: Path | None = None,
    temporal: str = DEFAULT_MODE,
    engine: Engine | None = None,
    auto_mode: str = "per-frame",
    key_every: float = 4.0,
) -> dict:
    """Evaluate ``model`` on every video and photo under ``data_dir``; returns the report
    (see :func:`format_table` and the module docstring). ``sheet``: also write a PNG
    contact sheet (rows: grey, reference, output, original) of the first ``sheet_items``
    items (the middle evaluated frame of a video). ``engine``: one already built, used
    instead of ``model``'s with ``device``, ``work_res``, ``weights`` and ``temporal`` (to
    compare variants of a model side by side). ``auto_mode="keyframes"`` (automatic models):
    films as ``vidcolor FILM --auto`` colours them by default, keyframes coloured by the model
    and carried by the exemplar network (``vidcolor.film.keyframes``)."""
    if reference_mode not in REFERENCE_MODES:
        raise InputError(f"`reference_mode={reference_mode}`: choose {', '.join(REFERENCE_MODES)}")
    if max_frames is not None and max_frames < 1:
        raise InputError("`max_frames` must be at least 1")
    if batch_size < 1:
        raise InputError("`batch_size` must be at least 1")
    if model not in colorizers.names():
        raise ModelError(f"unknown model {model!r}; available: {', '.join(colorizers.names())}")
    needs_reference = model not in colorizers.names(automatic=True)
    if needs_reference and reference_mode == "none":
        raise ModelError(f"model {model!r} colours from a reference: use `reference_mode=keyframe` or `reference_mode=exemplar`")
    items = find_items(data_dir)
    if reference_mode == "exemplar" and len(items) < 2:
        raise InputError(
            f"{data_dir}: exemplar mode takes each item's reference from another item; it needs two or more"
        )
    if temporal not in MODES:
        raise InputError(f"`temporal={temporal}`: choose {', '.join(MODES)}")
    from vidcolor.api import AUTO_MODES, DEFAULT_MODEL

    if auto_mode not in AUTO_MODES:
        raise InputError(f"`auto_mode={auto_mode}`: choose {', '.join(AUTO_MODES)}")
    if auto_mode == "keyframes" and reference_mode != "none":
        raise InputError("`auto_mode=keyframes` is for automatic models (`reference_mode=none`)")
    if engine is None:
        engine = Engine(model, device=device, work_res=work_res, weights=weights, **engine_flags(temporal))
    work_res = engine.work_res
    if auto_mode == "keyframes":
        carry = Engine(DEFAULT_MODEL, device=device, work_res=work_res, **engine_flags(temporal))
        ev = Evaluation(carry, reference_mode, batch_size, shot_threshold, keyframes_from=engine, key_every=key_every)
    else:
        ev = Evaluation(engine, reference_mode, batch_size, shot_threshold)
    started = time.perf_counter()
    references: list[str | None] = []
    skipped: list[dict] = []
    with console.progress(len(items), "evaluating", unit="items") as bar:
        for k, item in enumerate(items):
            exemplar, exemplar_name = None, None
            keep_sheet = sheet is not None and len([r for r in ev.runs if r.sheet is not None]) < sheet_items
            try:
                if reference_mode == "exemplar":
                    source = items[(k + 1) % len(items)]
                    exemplar, exemplar_name = first_frame(source), source.name
                    log.info(f"{item.name}: reference = first frame of {source.name}")
                if item.kind == "photo":
                    run = ev.photo(item, exemplar, keep_sheet)
                else:
                    run = ev.video(item, exemplar, keep_sheet, max_frames)
            except InputError as e:
                stopping.raise_if_interrupted()
                log.warning(f"skipping {item.name}: {e}")
                skipped.append({"name": item.name, "reason": str(e)})
                bar.update(1)
                continue
            ev.runs.append(run)
            references.append(exemplar_name)
            bar.update(1)
    if not ev.runs:
        raise InputError(f"{data_dir}: none of the {len(items)} item(s) could be evaluated")
    report = build_report(ev, data_dir, model, work_res, max_frames, references, skipped, time.perf_counter() - started)
    if auto_mode == "keyframes":
        report["auto_mode"], report["key_every"] = auto_mode, key_every
    if sheet is not None:
        write_sheet(sheet, [r for r in ev.runs if r.sheet])
        report["sheet"] = str(sheet)
    return report
