"""Quality of a colorizer on the evaluation media, through ``vidcolor eval``.

Two runs of :func:`vidcolor.eval.evaluate.evaluate` (the code behind ``vidcolor eval``), each
with the grey and Reinhard baselines beside the model:

* the evaluation clips in keyframe mode (each shot's reference is its original first
  frame), the first ``--frames`` frames of each;
* Kodak24 in exemplar mode (each photo's reference is the next photo).

    .venv/bin/python benchmarks/quality.py [--model transfer] [--frames 48] [--json out.json]
"""

from __future__ import annotations

import torch

import common
from vidcolor import console
from vidcolor.eval.evaluate import evaluate, format_table

METHODS = ("model", "reinhard", "grey")
FIGURES = ("psnr", "ssim", "ab_error", "auc", "auc_rebalanced", "colourfulness", "warp_error", "cdc")


def summary_table(report: dict, kind: str) -> str:
    summary = report["summary"][kind]
    rows = []
    for method in METHODS:
        figures = summary["methods"][method]
        rows.append([report["model"] if method == "model" else method, *(_cell(figures.get(f)) for f in FIGURES)])
    rows.append(["original", *(_cell(summary["original"].get(f)) if f in summary["original"] else "-" for f in FIGURES)])
    return common.table(["method", "PSNR", "SSIM", "ab err", "AuC", "AuC rb", "colourfulness", "warp err", "CDC"], rows)


def _cell(value) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.5f}" if abs(value) < 0.01 else f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--model", default="transfer")
    p.add_argument("--frames", type=int, default=48, help="frames per clip (default 48)")
    p.add_argument("--work-res", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(1)  # scoring is faster with one thread on a busy 2-core machine; figures do not depend on it
    console.setup(quiet=True)
    videos = evaluate(args.eval / "videos", args.model, "keyframe", "cpu", args.work_res, max_frames=args.frames)
    photos = evaluate(args.eval / "photos" / "kodak24", args.model, "exemplar", "cpu", args.work_res)
    text = (
        f"### Videos, keyframe mode ({videos['summary']['video']['items']} clips, first {args.frames} frames each)\n\n"
        + summary_table(videos, "video")
        + "\n\n### Kodak24, exemplar mode (reference: the next photo)\n\n"
        + summary_table(photos, "photo")
        + "\n\nPer item:\n\n```\n"
        + format_table(videos)
        + "\n\n"
        + format_table(photos)
        + "\n```"
    )
    common.report("Quality", text, {"videos": videos, "kodak24": photos}, args)


if __name__ == "__main__":
    main()
