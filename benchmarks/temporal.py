"""Temporal smoothing settings side by side.

Each clip is colorized frame by frame once (as ``vidcolor eval`` does it: keyframe mode,
where a shot's reference is its own original first frame, or exemplar mode, where it is the
first frame of the next clip); every setting of :class:`vidcolor.film.temporal.TemporalSmoother` then
smooths the same per-frame output, and each is scored against the originals with the
evaluation's own figures (PSNR, warp error, CDC). The grey output's warp error is printed
too: the part of the warp error that the lightness alone makes, which every colorization
on the input's lightness carries.

    python benchmarks/temporal.py [--clips a b ...] [--model transfer] [--max-frames 48] \\
        [--reference-mode keyframe|exemplar] \\
        --setting strength=0.85,sigma=12 --setting strength=0.95,sigma=1000 ...
"""

from __future__ import annotations

import hashlib
import time

import common

from vidcolor.eval.evaluate import DEFAULT_THRESHOLD, Evaluation, _report
from vidcolor.io.media import find_items, first_frame
from vidcolor.film.engine import Engine
from vidcolor.film.temporal import TemporalSmoother


def parse_setting(text: str) -> dict:
    """``strength=0.9,sigma=20`` -> keyword arguments of TemporalSmoother."""
    if text in ("", "default"):
        return {}
    return {key: float(value) for key, value in (part.split("=") for part in text.split(","))}


def memoize_colorizer(engine: Engine) -> None:
    """The colorizer's per-frame output, computed once per distinct batch of frames."""
    colorize, cache = engine.colorizer.colorize, {}

    def cached(small, prepared, *rest):
        key = hashlib.sha1(small.cpu().numpy().tobytes()).hexdigest()
        if key not in cache:
            cache[key] = colorize(small, prepared, *rest)
        return cache[key]

    engine.colorizer.colorize = cached


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--clips", nargs="*", help="clip names (stems) under the evaluation videos (default: all)")
    p.add_argument("--model", default="transfer")
    p.add_argument("--weights")
    p.add_argument("--max-frames", type=int, default=48)
    p.add_argument("--reference-mode", choices=("keyframe", "exemplar"), default="keyframe",
                   help="as vidcolor eval: a shot's own first frame, or the first frame of the next clip")
    p.add_argument("--setting", action="append", default=[],
                   help="TemporalSmoother keyword arguments, e.g. strength=0.9,sigma=20 ('default': as shipped)")
    args = p.parse_args()
    settings = args.setting or ["default"]
    items = [i for i in find_items(args.eval / "videos") if not args.clips or i.path.stem in args.clips]
    engine = Engine(args.model, device="cpu", weights=args.weights, smooth=True)
    memoize_colorizer(engine)
    exemplars = [first_frame(items[(k + 1) % len(items)]) if args.reference_mode == "exemplar" else None
                 for k in range(len(items))]
    rows, results = [], []
    for text in settings:
        engine.smoother = TemporalSmoother(**parse_setting(text))
        ev = Evaluation(engine, args.reference_mode, 4, DEFAULT_THRESHOLD)
        started = time.perf_counter()
        for item, exemplar in zip(items, exemplars):
            ev.runs.append(ev.video(item, exemplar, False, args.max_frames))
        report = _report(ev, args.eval, args.model, engine.work_res, args.max_frames, [None] * len(items), [],
                         time.perf_counter() - started)
        m = report["summary"]["video"]["methods"]
        raw, out, grey = m["per_frame"], m["model"], m["grey"]
        change = out["warp_error"] / raw["warp_error"] - 1
        rows.append([text, f"{raw['psnr']:.2f}", f"{out['psnr']:.2f}", f"{raw['warp_error']:.5f}",
                     f"{out['warp_error']:.5f}", f"{100 * change:+.1f}%", f"{raw['cdc']:.5f}", f"{out['cdc']:.5f}",
                     f"{grey['warp_error']:.5f}", engine.smoother.restarts])
        results.append({"setting": text, "per_frame": raw, "smoothed": out, "grey": grey,
                        "items": [{"name": i["name"], **{k: i["methods"][k] for k in ("per_frame", "model", "grey")}}
                                  for i in report["items"]]})
        print(" | ".join(str(c) for c in rows[-1]), flush=True)
    headers = ["setting", "PSNR per frame", "PSNR smoothed", "warp per frame", "warp smoothed", "change",
               "CDC per frame", "CDC smoothed", "grey warp", "restarts"]
    common.report("Temporal smoothing settings", common.table(headers, rows),
                  {"clips": [i.name for i in items], "model": args.model, "max_frames": args.max_frames,
                   "results": results}, args)


if __name__ == "__main__":
    main()
