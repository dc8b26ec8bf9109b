"""Quality, keyframe mode: the ``transfer`` model beside the grey and Reinhard baselines on
the evaluation clips (protocol: ../shared/eval/README.md).

For each clip (its first --frames frames):
1. grey = the CIE Lab L of the colour original, as grey levels (vidcolor.color);
2. shots: vidcolor.shots.scan_shots on the grey clip (written losslessly to a temporary
   FFV1 file), threshold 0.3 (the default);
3. the reference of each shot is the ORIGINAL colour of its first frame;
4. colorize with vidcolor.engine.Engine("transfer") (work_res 256, batches of 4 frames,
   one prepared reference per shot), as the pipeline does;
5. score every frame against the original: PSNR on uint8 RGB (20 log10(255 / RMSE) over
   all pixels and channels), averaged over frames; mean ab error = mean over pixels of the
   Euclidean distance between the ab (CIE Lab, D65) of output and original, averaged over
   frames.
Baselines from the same grey frames and references: ``grey`` (ab = 0 with the original L)
and ``reinhard``, global colour transfer (Reinhard et al. 2001) from the shot's reference:
for a grey target, whose ab has zero mean and zero spread, matching the ab statistics gives
the reference's mean ab at every pixel (computed here in CIE Lab rather than Ruderman's
l-alpha-beta), with the original L.

    .venv/bin/python benchmarks/quality.py [--frames 48] [--clips ...] [--json out.json]
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import common
from vidcolor import console
from vidcolor.color import compose_rgb, grey_to_lightness, rgb_to_lab
from vidcolor.engine import Engine
from vidcolor.shots import DEFAULT_THRESHOLD, scan_shots

CLIPS = [
    "bbb_360p_bird.mp4", "bbb_360p_bunny.mp4", "bbb_360p_nature.mp4",
    "sintel_trailer_a.mp4", "sintel_trailer_b.mp4",
    "sam2_01_dog.mp4", "sam2_03_blocks.mp4", "sam2_bedroom.mp4",
    "bbb_1080p_5s.avi",
]
METHODS = ["transfer", "grey", "reinhard"]


def lab(rgb: np.ndarray) -> torch.Tensor:
    """uint8 RGB ``(H, W, 3)`` -> CIE Lab ``(3, H, W)``."""
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)[0]


def psnr(out: np.ndarray, original: np.ndarray) -> float:
    mse = float(np.mean((out.astype(np.float64) - original) ** 2))
    return math.inf if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def ab_error(out: np.ndarray, original_lab: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(lab(out)[1:] - original_lab[1:], dim=0).mean())


def evaluate_clip(path: Path, frames: int, engine: Engine, tmp: Path, threshold: float) -> dict:
    originals, rate = common.decode_rgb(path, max_frames=frames)
    greys = [common.grey_levels(f) for f in originals]
    grey_file = tmp / "grey.mkv"
    common.write_grey_video(grey_file, greys, rate, lossless=True)
    shots = scan_shots(grey_file, threshold)
    scores = {m: {"psnr": [], "ab": []} for m in METHODS}
    model_seconds = 0.0
    for shot in shots:
        reference = originals[shot.start_frame]
        mean_ab = lab(reference)[1:].mean(dim=(1, 2)).view(1, 2, 1, 1)
        t0 = time.perf_counter()
        prepared = engine.prepare(reference)
        model_seconds += time.perf_counter() - t0
        for s in range(shot.start_frame, shot.end_frame, 4):
            batch = greys[s : min(s + 4, shot.end_frame)]
            t0 = time.perf_counter()
            outputs = {"transfer": engine.colorize(batch, prepared)}
            model_seconds += time.perf_counter() - t0
            lightness = grey_to_lightness(np.stack(batch)).unsqueeze(1)
            outputs["grey"] = compose_rgb(lightness, torch.zeros(len(batch), 2, *lightness.shape[-2:])).numpy()
            outputs["reinhard"] = compose_rgb(lightness, mean_ab.expand(len(batch), 2, *lightness.shape[-2:])).numpy()
            for j, original in enumerate(originals[s : s + len(batch)]):
                original_lab = lab(original)
                for method, out in outputs.items():
                    scores[method]["psnr"].append(psnr(out[j], original))
                    scores[method]["ab"].append(ab_error(out[j], original_lab))
    h, w = originals[0].shape[:2]
    return {
        "size": f"{w}x{h}",
        "frames": len(originals),
        "shot_starts": [s.start_frame for s in shots],
        "model_fps": len(originals) / model_seconds,
        **{m: {k: float(np.mean(v)) for k, v in scores[m].items()} for m in METHODS},
    }


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=48, help="first N frames of each clip (default 48)")
    p.add_argument("--clips", nargs="+", default=CLIPS, help="clip file names under EVAL/videos (default: all 9)")
    p.add_argument("--work-res", type=int, default=256)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="shot detector threshold (default 0.3)")
    args = p.parse_args()
    console.setup(quiet=True)
    engine = Engine("transfer", device="cpu", work_res=args.work_res)
    results, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        for name in args.clips:
            r = results[name] = evaluate_clip(common.video(args, name), args.frames, engine, Path(tmp), args.threshold)
            rows.append([name, r["size"], r["frames"], " ".join(map(str, r["shot_starts"])),
                         *(f"{r[m]['psnr']:.2f}" for m in METHODS), *(f"{r[m]['ab']:.2f}" for m in METHODS),
                         f"{r['model_fps']:.2f}"])
    means = {m: {k: float(np.mean([r[m][k] for r in results.values()])) for k in ("psnr", "ab")} for m in METHODS}
    rows.append(["**mean**", "", sum(r["frames"] for r in results.values()), "",
                 *(f"**{means[m]['psnr']:.2f}**" for m in METHODS), *(f"**{means[m]['ab']:.2f}**" for m in METHODS), ""])
    headers = ["clip", "size", "frames", "shot starts", *(f"PSNR {m}" for m in METHODS),
               *(f"ab err {m}" for m in METHODS), "model fps"]
    text = common.table(headers, rows)
    text += (f"\n\nKeyframe mode, first {args.frames} frames of each clip; PSNR in dB (higher is better), mean ab "
             f"error in CIE Lab units (lower is better); mean = unweighted mean over clips. Shots from "
             f"scan_shots at threshold {args.threshold:g} on the grey clip; each shot's reference is its original "
             f"first frame. Model: transfer, work_res {args.work_res}, CPU; model fps = frames / time in "
             f"Engine.prepare + Engine.colorize (no decoding or scoring).")
    common.report("Quality (keyframe mode)", text, {"results": results, "mean": means, "frames": args.frames}, args)


if __name__ == "__main__":
    main()
