"""The exemplar network on films with real references: confidence and film-speed tracking.

Runs ``vidcolor eval`` (the one film loop, smoothing on as by default) side by side on the
same clips:

- exemplar mode (each clip coloured from the first frame of the next clip in sorted order:
  mostly another clip of the same source): ``transfer``, the exemplar network with its
  confidence (the shipped file), and the same network with the confidence switched off;
- keyframe mode, on held-out clips (each shot's reference its own original first frame):
  ``transfer``, the network with the frames of a shot tracked (the default) and with every
  frame searched in full.

Each item's mean confidence is recorded as the film loop colours it, and its rank
correlation (Spearman) with the item's mean ab error is reported: the worst items should
have the lowest confidence.

    .venv/bin/python benchmarks/trust.py --data DIR --keyframe-data DIR [--max-frames 48] [--json out.json]
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

import common
from vidcolor import console
from vidcolor.eval.evaluate import evaluate
from vidcolor.film.engine import Engine

FIGURES = {"psnr": ".2f", "ab_error": ".2f", "auc_rebalanced": ".4f", "colourfulness": ".2f", "warp_error": ".5f",
           "cdc": ".5f"}


def cells(figures: dict) -> list[str]:
    return [format(figures[k], spec) for k, spec in FIGURES.items()]


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def variant(name: str, work_res: int) -> Engine:
    """``transfer``, ``exemplar`` (confidence and tracking, as shipped), ``exemplar, no
    confidence`` or ``exemplar, full search``."""
    engine = Engine(name.split(",")[0], device="cpu", work_res=work_res, smooth=True)
    if name.endswith("no confidence"):
        net = engine.colorizer.net
        net.config = dataclasses.replace(net.config, confidence=False)
    if name.endswith("full search"):
        engine.colorizer.tracker = None
    return engine


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder of colour clips (exemplar mode)")
    p.add_argument("--keyframe-data", type=Path, required=True, help="folder of held-out colour clips (keyframe mode)")
    p.add_argument("--max-frames", type=int, default=48)
    p.add_argument("--work-res", type=int, default=256)
    args = p.parse_args()
    console.setup(quiet=True)
    plan = [("exemplar", "transfer"), ("exemplar", "exemplar"), ("exemplar", "exemplar, no confidence"),
            ("keyframe", "transfer"), ("keyframe", "exemplar"), ("keyframe", "exemplar, full search")]
    results, rows, confidences, errors = {}, [], [], []
    for mode, name in plan:
        engine = variant(name, args.work_res)
        t0 = time.perf_counter()
        data = args.data if mode == "exemplar" else args.keyframe_data
        report = evaluate(data, engine.colorizer.name, reference_mode=mode, max_frames=args.max_frames,
                          engine=engine)
        seconds = time.perf_counter() - t0
        results[f"{mode}: {name}"] = report
        video = report["summary"]["video"]
        rows.append([mode, name, *cells(video["methods"]["model"]), f"{video['model_fps']:.2f}", f"{seconds:.0f}"])
        if name == "transfer":
            rows.append([mode, "grey", *cells(video["methods"]["grey"]), "", ""])
        if name == "exemplar":
            for item in report["items"]:
                if item["confidence"] is not None:
                    confidences.append(item["confidence"])
                    errors.append(item["methods"]["model"]["ab_error"])
                    rows.append([mode, f"  {item['name']}", f"{item['methods']['model']['psnr']:.2f}",
                                 f"{item['methods']['model']['ab_error']:.2f}", "", "", "", "",
                                 f"confidence {item['confidence']:.3f}", ""])
    for mode in ("exemplar", "keyframe"):
        original = results[f"{mode}: transfer"]["summary"]["video"]["original"]
        rows.append([mode, "original", "", "", "", f"{original['colourfulness']:.2f}", f"{original['warp_error']:.5f}",
                     f"{original['cdc']:.5f}", "", ""])
    text = common.table(["mode", "method", "PSNR", "ab err", "AuC rb", "colourfulness", "warp err", "CDC",
                         "model fps", "eval s"], rows)
    rho = spearman(confidences, errors)
    text += (f"\n\nSpearman rank correlation of each clip's mean confidence with its mean ab error "
             f"(both modes, {len(errors)} clip runs): {rho:.3f}")
    common.report("The exemplar network with real references", text,
                  {"results": results, "spearman": rho, "confidence": confidences, "ab_error": errors}, args)


if __name__ == "__main__":
    main()
