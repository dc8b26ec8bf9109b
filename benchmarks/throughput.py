"""Throughput: frames per second of the full pipeline beside the floor of plain decoding and
encoding, at 640x360 and 1920x1080.

floor: vidcolor's own VideoReader and VideoWriter with no model: decode to grey, write the
       grey as RGB (libx264, crf 18), audio copied.
full:  vidcolor.film.pipeline.colorize_video, as ``vidcolor INPUT --reference REF --model M``
       runs it (REF: the clip's first frame in colour, saved to a PNG; M: --model, default
       transfer, with --weights, --device and --temporal as the command takes them; the
       temporal default is the command's).

Both run in this process (the model is built once, before timing; preparing the reference
is timed), with glibc's allocator tuned as ``vidcolor``'s main() does
(vidcolor.film.allocator.keep_freed_memory; --default-malloc leaves glibc's defaults). Runs are interleaved (floor, full, floor, full, ...) because the machine is
noisy; medians are reported, and the ratio full/floor is the median of the ratios of each
side-by-side pair. CPU seconds per frame (user and system, all threads) come from
getrusage.

    .venv/bin/python benchmarks/throughput.py [--runs 3] [--sizes 360p 1080p] [--model M] [--device D] [--json out.json]
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import common
from vidcolor import console
from vidcolor.film.engine import Engine
from vidcolor.film.pipeline import VideoOptions, colorize_video
from vidcolor.film.references import gather_references
from vidcolor.film.temporal import DEFAULT_MODE, MODES, engine_flags
from vidcolor.io.video_reader import Frame, VideoReader
from vidcolor.io.video_writer import VideoWriter

CLIPS = {"360p": "bbb_360p_bunny.mp4", "1080p": "bbb_1080p_5s.avi"}


def floor(source: Path, output: Path, end: float) -> int:
    """Decode to grey and encode the grey as RGB, copying the audio: no model."""
    frames = 0
    with VideoReader(source, end=end) as reader:
        writer = VideoWriter(output, reader.info, "libx264", 18)
        for item in reader:
            if isinstance(item, Frame):
                writer.write(np.repeat(item.grey[..., None], 3, axis=2), item.pts, item.rotation)
                frames += 1
            else:
                writer.mux(item)
        writer.close()
    return frames


def full(source: Path, output: Path, end: float, engine: Engine, reference: Path, batch_size: int,
         overlap: bool = True) -> int:
    refs = gather_references([reference])
    options = VideoOptions(codec="libx264", crf=18, end=end, batch_size=batch_size, overlap=overlap)
    return colorize_video(source, output, engine, refs, options)


def timed(fn, *args) -> dict:
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    frames = fn(*args)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "frames": frames,
        "seconds": wall,
        "fps": frames / wall,
        "user_s_per_frame": (after.ru_utime - before.ru_utime) / frames,
        "sys_s_per_frame": (after.ru_stime - before.ru_stime) / frames,
    }


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0], runs=3)
    p.add_argument("--sizes", nargs="+", choices=list(CLIPS), default=list(CLIPS))
    p.add_argument("--seconds-360p", type=float, default=4.0, help="length used at 360p (default 4 s)")
    p.add_argument("--seconds-1080p", type=float, default=2.0, help="length used at 1080p (default 2 s)")
    p.add_argument("--work-res", type=int, default=256, help="vidcolor --work-res (default 256, the CLI default)")
    p.add_argument("--torch-threads", type=int, help="torch.set_num_threads for the experiment (default: torch's)")
    p.add_argument("--default-malloc", action="store_true", help="do not tune the allocator as the vidcolor command does")
    p.add_argument("--model", nargs="+", default=["transfer"],
                   help="colorizer (default transfer); several are run side by side, interleaved")
    p.add_argument("--weights", help="weights for --model (default: the installed ones)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, default=4, help="frames per model call (default 4, the CLI default)")
    p.add_argument("--temporal", choices=MODES, default=DEFAULT_MODE,
                   help=f"temporal mode, as the command's --temporal (default {DEFAULT_MODE})")
    p.add_argument("--compare-overlap", action="store_true",
                   help="also run the pipeline with encoding in line (no encoder thread), interleaved")
    args = p.parse_args()
    allocator = "glibc defaults"
    if not args.default_malloc:
        try:
            from vidcolor.film.allocator import keep_freed_memory
        except ImportError:  # versions before the allocator tuning
            pass
        else:
            allocator = "keep_freed_memory()" if keep_freed_memory() else "glibc defaults (tuning unavailable)"
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    console.setup(quiet=True)
    options = {"weights": args.weights} if args.weights else {}
    engines = {m: Engine(m, device=args.device, work_res=args.work_res, **engine_flags(args.temporal), **options)
               for m in args.model}
    engine = engines[args.model[0]]
    results, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        tmp = Path(tmp)
        for size in args.sizes:
            source = common.video(args, CLIPS[size])
            end = args.seconds_360p if size == "360p" else args.seconds_1080p
            first, _ = common.decode_rgb(source, max_frames=1)
            reference = common.save_png(tmp / f"ref_{size}.png", first[0])
            for e in engines.values():
                e.colorize([common.grey_levels(first[0])], e.prepare(first[0]))  # warm-up
            others = args.model[1:]
            runs = ({"floor": [], "full": []} | {f"full, {m}": [] for m in others}
                    | ({"full, encoding in line": []} if args.compare_overlap else {}))
            for _ in range(args.runs):
                runs["floor"].append(timed(floor, source, tmp / "floor.mp4", end))
                runs["full"].append(timed(full, source, tmp / "full.mp4", end, engine, reference, args.batch_size))
                for m in others:
                    runs[f"full, {m}"].append(timed(full, source, tmp / f"{m}.mp4", end, engines[m], reference,
                                                    args.batch_size))
                if args.compare_overlap:
                    runs["full, encoding in line"].append(
                        timed(full, source, tmp / "inline.mp4", end, engine, reference, args.batch_size, False))
            to_floor = {kind: [b["fps"] / a["fps"] for a, b in zip(runs["floor"], rs)] for kind, rs in runs.items()}
            ratios = to_floor["full"]
            summary = {
                kind: {k: common.median(r[k] for r in rs) for k in ("fps", "seconds", "user_s_per_frame", "sys_s_per_frame")}
                for kind, rs in runs.items()
            }
            to_first = {m: common.median(a["fps"] / b["fps"] for a, b in zip(runs["full"], runs[f"full, {m}"]))
                        for m in others}
            results[size] = {"clip": CLIPS[size], "seconds": end, "frames": runs["full"][0]["frames"], "runs": runs,
                             "median": summary, "ratio_full_floor": common.median(ratios), "ratios": ratios,
                             "ratio_to_others": to_first}
            info = f"{CLIPS[size]}, first {end:g} s ({runs['full'][0]['frames']} frames)"
            for kind in runs:
                s = summary[kind]
                fps_runs = ", ".join(f"{r['fps']:.2f}" for r in runs[kind])
                rows.append([size, info, kind, f"{s['fps']:.2f}", fps_runs, f"{s['user_s_per_frame']:.3f}",
                             f"{s['sys_s_per_frame']:.3f}", f"{common.median(to_floor[kind]):.3f}" if kind != "floor" else ""])
    text = common.table(
        ["size", "input", "run", "median fps", "fps per run", "user CPU s/frame", "sys CPU s/frame", "full/floor"],
        rows,
    )
    where = torch.cuda.get_device_name() if engine.device.type == "cuda" else "CPU"
    for size, r in results.items():
        for m, ratio in r["ratio_to_others"].items():
            text += f"\n{size}: fps of `{args.model[0]}` / fps of `{m}` = {ratio:.3f} (median of the per-run ratios)"
    text += (f"\n\n{args.runs} interleaved runs each; model `{args.model[0]}` (full), --work-res {args.work_res}, "
             f"--batch-size {args.batch_size}, {where}, "
             f"torch threads {torch.get_num_threads()}, allocator: {allocator}; full/floor = median of the per-pair "
             f"fps ratios.")
    data = {"results": results, "model": args.model[0], "others": args.model[1:], "device": str(engine.device), "work_res": args.work_res, "torch_threads": torch.get_num_threads(), "allocator": allocator}
    common.report("Throughput", text, data, args)


if __name__ == "__main__":
    main()
