"""``vidcolor eval``: colorization quality and speed on colour originals, with baselines.

Every video (.mp4, .avi, .mkv, .mov) and photo under DATA (recursive, sorted, hidden files
skipped) is a colour original. It is turned grey the way the evaluation protocol says
(CIE Lab L of the sRGB original, D65, as the grey levels of the same L:
:func:`vidcolor.ops.color.rgb_to_grey_levels`), colorized by the same :class:`Engine` as
``vidcolor`` (colour predicted at ``work_res``, guided upsampling, full-resolution L kept),
and compared with the original (see :mod:`vidcolor.eval.metrics` for every formula).

References (``reference_mode``):

- ``keyframe``: videos are cut into shots by the shot detector of ``vidcolor shots`` (the
  :class:`~vidcolor.film.shots.CutDetector` that :func:`~vidcolor.film.shots.scan_shots` runs, with
  the same threshold and analysis image), fed the grey frames of this evaluation as they
  are decoded; the reference of each shot is the ORIGINAL colour of its first frame. A photo
  is its own keyframe: its reference is the original photo itself (an upper bound for
  exemplar methods, not a realistic setting).
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

Videos stream: frames are decoded once, and only the shot detector's look-ahead (five
frames), one batch, the current reference and the last frames the video metrics need are
in memory, whatever the film's length. Speed: the time of the model (reference preparation
and colorization, not decoding or scoring) per frame is reported as ``model_fps``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from vidcolor import colorizers, console
from vidcolor.io.atomic import atomic_output
from vidcolor.ops.color import compose_rgb, grey_to_lightness, rgb_to_grey_levels
from vidcolor.film.engine import Engine
from vidcolor.errors import InputError, ModelError
from vidcolor.io.images import read_rgb, write_image
from vidcolor.eval.metrics import AbScorer, FlowTracker, VideoScorer, colourfulness, lab_of, psnr, ssim
from vidcolor.film.shots import DEFAULT_THRESHOLD, ShotFollower
from vidcolor.film.temporal import DEFAULT_MODE, MODES, engine_flags
from vidcolor.io.media import Item, find_items, first_frame, frame_count, video_frames

log = logging.getLogger("vidcolor")

REFERENCE_MODES = ("keyframe", "exemplar", "none")
METHODS = ("model", "per_frame", "reinhard", "grey")
IMAGE_METRICS = ("psnr", "ssim", "ab_error", "auc", "auc_rebalanced", "colourfulness")
VIDEO_METRICS = ("warp_error", "cdc")
ORIGINAL_METRICS = ("colourfulness", "warp_error", "cdc")
SHEET_ROW_HEIGHT = 144
SHEET_LABEL_WIDTH = 96
SHEET_TITLE_HEIGHT = 20
SHEET_ROWS = ("grey", "reference", "output", "original")

NOTES = [
    "grey: CIE Lab L of the original (D65, sRGB) as grey levels (vidcolor.ops.color.rgb_to_grey_levels).",
    "per_frame: the model's own output of each frame before temporal smoothing (identical to the model "
    "when the smoothing stage is off).",
    "reinhard: global colour transfer (Reinhard et al. 2001); for a grey target, the reference's mean ab "
    "everywhere with the original L.",
    "auc: area under the cumulative curve of the per-pixel ab error for thresholds 0..150, normalised to "
    "[0, 1] (exact integral). auc_rebalanced: each pixel weighted by 1/p of its ground-truth ab bin (grid 10); "
    "the prior p is estimated from the ground truth of every pixel evaluated in this run (all items), not "
    "ImageNet's, and is not smoothed.",
    "colourfulness: Hasler and Suesstrunk 2003 on signed rg and yb (no absolute values), RGB in [0, 255].",
    "warp_error: Lai et al. 2018 with OpenCV DIS (medium) flow on the original colour frames' grey levels; "
    "not comparable with FlowNet2-based published figures, only side by side.",
    "cdc: Liu et al. 2021, 256-bin RGB histograms, JS divergence (natural log), d in {1, 2, 4}.",
    "psnr, ssim, colourfulness: mean over the frames of a clip; ab_error, auc: over all pixels of a clip; "
    "means: over items. null: not defined (one frame for video measures; infinite PSNR of an exact output).",
]


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


@dataclass
class Evaluation:
    """One evaluation run: the engine, the mode, and everything gathered so far."""

    engine: Engine
    reference_mode: str
    batch_size: int = 4
    shot_threshold: float = DEFAULT_THRESHOLD
    runs: list[ItemRun] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.engine.device

    # -- references -------------------------------------------------------------------

    def _prepare(self, run: ItemRun, reference: np.ndarray | None):
        t0 = time.perf_counter()
        prepared = self.engine.prepare(reference if self.reference_mode != "none" else None)
        run.model_seconds += time.perf_counter() - t0
        mean_ab = None
        if reference is not None and self.reference_mode != "none":
            mean_ab = lab_of(reference, self.device)[0, 1:].mean(dim=(1, 2))
        return prepared, mean_ab

    # -- one batch of frames ----------------------------------------------------------

    def _batch(self, run: ItemRun, frames: list, prepared, mean_ab, reference, sheet_target: int) -> None:
        greys = [g for _, _, g in frames]
        t0 = time.perf_counter()
        model_out, raw = self.engine.colorize(greys, prepared, sequence=run.item.kind == "video", with_raw=True)
        run.model_seconds += time.perf_counter() - t0
        with torch.no_grad():
            lightness = grey_to_lightness(np.stack(greys), self.device).unsqueeze(1)
            zeros = torch.zeros(lightness.shape[0], 2, *lightness.shape[-2:], device=self.device)
            outputs = {"model": model_out, "grey": compose_rgb(lightness, zeros).cpu().numpy()}
            if "per_frame" in run.methods:
                outputs["per_frame"] = raw
            if mean_ab is not None:
                outputs["reinhard"] = compose_rgb(lightness, zeros + mean_ab.view(1, 2, 1, 1)).cpu().numpy()
        originals = np.stack([rgb for _, rgb, _ in frames])
        original_lab = lab_of(originals, self.device)
        for j, (index, rgb, grey) in enumerate(frames):
            flow = run.flows.push(rgb) if run.flows is not None else None
            run.original.update(rgb, flow)
            for name, output in outputs.items():
                run.methods[name].update(rgb, output[j], original_lab[j : j + 1], self.device, flow)
            if run.sheet is not None and (run.sheet_frame < 0 or index == sheet_target):
                run.sheet = {"grey": grey, "reference": reference, "output": model_out[j], "original": rgb}
                run.sheet_frame = index
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
        prepared, mean_ab = self._prepare(run, reference)
        run.height, run.width = rgb.shape[:2]
        run.shots = 1
        self._batch(run, [(0, rgb, grey)], prepared, mean_ab, reference, 0)
        return run

    def video(self, item: Item, exemplar: np.ndarray | None, keep_sheet: bool, max_frames: int | None) -> ItemRun:
        run = self._new_run(item, keep_sheet)
        expected = frame_count(item.path, max_frames)
        sheet_target = max(0, (expected - 1) // 2)
        follower = ShotFollower(self.shot_threshold)
        batch: list = []
        state = {"prepared": None, "mean_ab": None, "reference": None}
        if self.reference_mode != "keyframe":
            state["reference"] = exemplar
            state["prepared"], state["mean_ab"] = self._prepare(run, exemplar)

        def flush() -> None:
            if batch:
                self._batch(run, batch, state["prepared"], state["mean_ab"], state["reference"], sheet_target)
                bar.update(len(batch))
                batch.clear()

        self.engine.new_shot()  # a new film

        def take(released) -> None:
            for index, rgb, grey, new_shot in released:
                if new_shot:
                    flush()
                    run.shots += 1
                    self.engine.new_shot()
                    if self.reference_mode == "keyframe":
                        state["reference"] = rgb
                        state["prepared"], state["mean_ab"] = self._prepare(run, rgb)
                batch.append((index, rgb, grey))
                if len(batch) >= self.batch_size:
                    flush()

        with console.progress(expected, item.name) as bar, closing(video_frames(item.path, max_frames)) as frames:
            for index, rgb in enumerate(frames):
                if index == 0:
                    run.height, run.width = rgb.shape[:2]
                take(follower.push(index, rgb, rgb_to_grey_levels(rgb)))
            take(follower.flush())
            flush()
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
) -> dict:
    """Evaluate ``model`` on every video and photo under ``data_dir``; returns the report
    (see :func:`format_table` and the module docstring). ``sheet``: also write a PNG
    contact sheet (rows: grey, reference, output, original) of the first ``sheet_items``
    items (the middle evaluated frame of a video)."""
    if reference_mode not in REFERENCE_MODES:
        raise InputError(f"--reference-mode {reference_mode!r}: choose {', '.join(REFERENCE_MODES)}")
    if max_frames is not None and max_frames < 1:
        raise InputError("--max-frames must be at least 1")
    if batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if model not in colorizers.names():
        raise ModelError(f"unknown model {model!r}; available: {', '.join(colorizers.names())}")
    needs_reference = model not in colorizers.names(automatic=True)
    if needs_reference and reference_mode == "none":
        raise ModelError(f"model {model!r} colours from a reference: use --reference-mode keyframe or exemplar")
    items = find_items(data_dir)
    if reference_mode == "exemplar" and len(items) < 2:
        raise InputError(
            f"{data_dir}: exemplar mode takes each item's reference from another item; it needs two or more"
        )
    if temporal not in MODES:
        raise InputError(f"--temporal {temporal}: choose {', '.join(MODES)}")
    engine = Engine(model, device=device, work_res=work_res, weights=weights, **engine_flags(temporal))
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
                log.warning(f"skipping {item.name}: {e}")
                skipped.append({"name": item.name, "reason": str(e)})
                bar.update(1)
                continue
            ev.runs.append(run)
            references.append(exemplar_name)
            bar.update(1)
    if not ev.runs:
        raise InputError(f"{data_dir}: none of the {len(items)} item(s) could be evaluated")
    report = _report(ev, data_dir, model, work_res, max_frames, references, skipped, time.perf_counter() - started)
    if sheet is not None:
        write_sheet(sheet, [r for r in ev.runs if r.sheet])
        report["sheet"] = str(sheet)
    return report


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return _finite(obj)


def _report(ev: Evaluation, data_dir, model, work_res, max_frames, references, skipped, seconds) -> dict:
    prior = sum(r.methods["model"].ab.counts for r in ev.runs)  # ground-truth ab bins of every pixel
    items = []
    for run, exemplar_name in zip(ev.runs, references):
        video = run.item.kind == "video"
        methods = {name: scores.figures(prior) for name, scores in run.methods.items()}
        if video and "per_frame" not in methods:
            methods["per_frame"] = dict(methods["model"], identical_to_model=True)
        methods = {m: methods[m] for m in METHODS if m in methods}
        if ev.reference_mode == "keyframe":
            reference = "original first frame of each shot" if video else "the original itself"
        elif ev.reference_mode == "exemplar":
            reference = f"first frame of {exemplar_name}"
        else:
            reference = None
        items.append(
            {
                "name": run.item.name,
                "kind": run.item.kind,
                "frames": run.frames,
                "width": run.width,
                "height": run.height,
                "shots": run.shots,
                "reference": reference,
                "model_seconds": run.model_seconds,
                "model_fps": run.frames / run.model_seconds if run.model_seconds > 0 else None,
                "original": run.original.figures(),
                "methods": methods,
            }
        )
    summary = {}
    for kind in ("video", "photo"):
        chosen = [i for i in items if i["kind"] == kind]
        if not chosen:
            continue
        names = [m for m in METHODS if m in chosen[0]["methods"]]
        metrics = IMAGE_METRICS + (VIDEO_METRICS if kind == "video" else ())
        frames = sum(i["frames"] for i in chosen)
        seconds_model = sum(i["model_seconds"] for i in chosen)
        summary[kind] = {
            "items": len(chosen),
            "frames": frames,
            "model_seconds": seconds_model,
            "model_fps": frames / seconds_model if seconds_model > 0 else None,
            "methods": {m: {k: _mean([i["methods"][m][k] for i in chosen]) for k in metrics} for m in names},
            "original": {
                k: _mean([i["original"][k] for i in chosen])
                for k in ORIGINAL_METRICS
                if k in chosen[0]["original"]
            },
        }
        if kind == "video" and ev.engine.smoother is None:
            summary[kind]["methods"]["per_frame"]["identical_to_model"] = True
    report = {
        "data": str(data_dir),
        "model": model,
        "reference_mode": ev.reference_mode,
        "work_res": work_res,
        "device": str(ev.device),
        "max_frames": max_frames,
        "shot_threshold": ev.shot_threshold,
        "seconds": seconds,
        "items": items,
        "summary": summary,
        "skipped": skipped,
        "notes": NOTES,
    }
    return _clean(report)


def _mean(values: list) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else math.nan


# -- output -------------------------------------------------------------------------------


def write_json(report: dict, path: Path) -> None:
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")


_COLUMNS = (
    ("PSNR", "psnr", "{:.2f}"),
    ("SSIM", "ssim", "{:.4f}"),
    ("ab err", "ab_error", "{:.2f}"),
    ("AuC", "auc", "{:.4f}"),
    ("AuC rb", "auc_rebalanced", "{:.4f}"),
    ("colour", "colourfulness", "{:.1f}"),
    ("warp err", "warp_error", "{:.5f}"),
    ("CDC", "cdc", "{:.5f}"),
)


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return fmt.format(value)


def format_table(report: dict) -> str:
    """The report as a text table: per item, each method and the original, then the mean."""
    model = report["model"]
    labels = {"model": model, "per_frame": "per-frame*"}
    rows: list[tuple[str, str, dict, str]] = []

    def block(title: str, methods: dict, original: dict, fps) -> None:
        first = True
        for name, figures in list(methods.items()) + [("original", original)]:
            speed = f"{fps:.2f}" if name == "model" and fps else ""
            rows.append((title if first else "", labels.get(name, name), figures, speed))
            first = False

    for item in report["items"]:
        title = item["name"]
        if item["kind"] == "video":
            title += f" ({item['frames']} f, {item['shots']} shot{'s' if item['shots'] != 1 else ''})"
        block(title, item["methods"], item["original"], item["model_fps"])
    for kind, summary in report["summary"].items():
        title = f"MEAN of {summary['items']} {kind}{'s' if summary['items'] != 1 else ''}"
        block(title, summary["methods"], summary["original"], summary["model_fps"])
    width = max(len(r[0]) for r in rows)
    lw = max(10, max(len(r[1]) for r in rows))
    header = f"{'item':<{width}}  {'method':<{lw}}" + "".join(f" {h:>9}" for h, _, _ in _COLUMNS) + f" {'fps':>7}"
    lines = [
        f"vidcolor eval: model {model}, reference mode {report['reference_mode']}, work res {report['work_res']}, "
        f"device {report['device']}",
        header,
        "-" * len(header),
    ]
    for title, label, figures, speed in rows:
        if title and len(lines) > 3:
            lines.append("")
        cells = "".join(f" {_cell(figures.get(key), fmt):>9}" for _, key, fmt in _COLUMNS)
        lines.append(f"{title:<{width}}  {label:<{lw}}{cells} {speed:>7}")
    lines.append("")
    for skipped in report.get("skipped", []):
        lines.append(f"skipped {skipped['name']}: {skipped['reason']}")
    lines.append(
        "per-frame*: the model's own output of each frame, before temporal smoothing (the same as the model when "
        "the smoothing stage is off). fps: model time only."
    )
    return "\n".join(lines)


def _fit(rgb: np.ndarray, width: int | None = None) -> np.ndarray:
    """Scale to the sheet's row height (or into ``width`` x row height, padded white)."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    h, w = rgb.shape[:2]
    scale = SHEET_ROW_HEIGHT / h
    if width is not None:
        scale = min(scale, width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    tile = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if width is None:
        return tile
    canvas = np.full((SHEET_ROW_HEIGHT, width, 3), 255, np.uint8)
    y, x = (SHEET_ROW_HEIGHT - tile.shape[0]) // 2, (width - tile.shape[1]) // 2
    canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return canvas


def write_sheet(path: Path, runs: list[ItemRun]) -> None:
    """A PNG contact sheet: one column per item (its name on top), rows grey, reference,
    output, original."""
    if not runs:
        return
    columns = []
    for run in runs:
        original = _fit(run.sheet["original"])
        width = original.shape[1]
        tiles = []
        for row in SHEET_ROWS:
            image = run.sheet[row]
            blank = np.full((SHEET_ROW_HEIGHT, width, 3), 255, np.uint8)
            tiles.append(_fit(image, width) if image is not None else blank)
        title = np.full((SHEET_TITLE_HEIGHT, width, 3), 255, np.uint8)
        name = run.item.name if len(run.item.name) * 7 <= width else run.item.name[: max(1, width // 7 - 2)] + ".."
        cv2.putText(title, name, (2, SHEET_TITLE_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.insert(0, title)
        column = np.concatenate([np.pad(t, ((0, 4), (0, 4), (0, 0)), constant_values=255) for t in tiles], axis=0)
        columns.append(column)
    labels = np.full((columns[0].shape[0], SHEET_LABEL_WIDTH, 3), 255, np.uint8)
    for r, name in enumerate(SHEET_ROWS):
        y = SHEET_TITLE_HEIGHT + 4 + r * (SHEET_ROW_HEIGHT + 4) + SHEET_ROW_HEIGHT // 2 + 5
        cv2.putText(labels, name, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    write_image(Path(path), np.concatenate([labels, *columns], axis=1))
