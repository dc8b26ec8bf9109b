"""The report of ``vidcolor eval``: its figures per item and their means (:func:`build_report`),
as JSON (:func:`write_json`) and as a text table (:func:`format_table`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from vidcolor.io.atomic import atomic_output

METHODS = ("model", "per_frame", "reinhard", "grey")
IMAGE_METRICS = ("psnr", "ssim", "ab_error", "auc", "auc_rebalanced", "colourfulness")
VIDEO_METRICS = ("warp_error", "cdc")
ORIGINAL_METRICS = ("colourfulness", "warp_error", "cdc")

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


def build_report(ev, data_dir, model, work_res, max_frames, references, skipped, seconds) -> dict:
    """The report of an ``Evaluation`` ``ev`` once every item is done."""
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
                "confidence": _mean(run.confidence) if run.confidence else None,
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
