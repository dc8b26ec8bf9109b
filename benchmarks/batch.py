"""A batch of films on Ray: the same batch with 1 and with 2 workers on this machine (one
torch thread each), side by side, and the per-film costs that plan an archive.

The films are cut from an evaluation clip (greyed, ``--films`` films of ``--frames`` frames
at its own size) into a temporary folder, with a colour frame of the clip as the reference;
each is coloured as ``vidcolor film.mp4 --reference ref.png`` colours it (the exemplar
network, ``--work-res``). Runs alternate (1 worker, 2 workers, 1, 2, ...), each into a new
output folder, the cluster started for each and stopped after it (``--ray local``), and the
ratio is the median of the runs' ratios. Also measured: the same batch here without Ray
(one torch thread), a batch of tiny films (the fixed cost of a film: probe, open, write,
join, report; with a cheap model), and decoding alone (what a part of a long film pays for
the frames before its own).

    .venv/bin/python benchmarks/batch.py [--films 4] [--frames 72] [--runs 2] [--json out.json]
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import torch

CLIP = "bbb_360p_bunny.mp4"


def make_archive(args, folder: Path) -> tuple[Path, Path]:
    """``args.films`` grey films cut from the clip, and a colour reference from it."""
    import cv2

    frames, rate = common.decode_rgb(common.video(args, CLIP), max_frames=args.films * args.frames + 1)
    films = folder / "films"
    films.mkdir()
    for k in range(args.films):
        part = frames[k * args.frames:(k + 1) * args.frames]
        common.write_grey_video(films / f"reel{k:02d}.mp4", [common.grey_levels(f) for f in part], rate)
    reference = folder / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(frames[-1], cv2.COLOR_RGB2BGR))
    return films, reference


def timed_batch(films: Path, out: Path, options: dict, **how) -> tuple[float, dict]:
    from vidcolor.batch import run_batch

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = run_batch(films, out, options, **how)
    seconds = time.perf_counter() - started
    assert summary["failed"] == 0, summary
    return seconds, summary


def decode_fps(path: Path) -> float:
    from vidcolor.io.video_reader import VideoReader

    started, count = time.perf_counter(), 0
    with VideoReader(path, copy=False) as reader:
        for _ in reader.frames():
            count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], runs=2)
    p.add_argument("--films", type=int, default=4)
    p.add_argument("--frames", type=int, default=72)
    p.add_argument("--work-res", type=int, default=256)
    p.add_argument("--tiny", type=int, default=8, help="films in the batch of tiny films")
    args = p.parse_args()
    torch.set_num_threads(1)
    from vidcolor import console

    console.setup(quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        films, reference = make_archive(args, tmp)
        options = {"reference": [reference], "work_res": args.work_res}
        runs = []
        for run in range(args.runs):
            one, summary = timed_batch(films, tmp / "out1", options, ray="local", workers=1)
            two, _ = timed_batch(films, tmp / "out2", options, ray="local", workers=2)
            runs.append({"one_worker_s": one, "two_workers_s": two, "ratio": one / two, "frames": summary["frames"]})
            print(f"run {run}: 1 worker {one:.1f} s, 2 workers {two:.1f} s, ratio {one / two:.2f}", flush=True)
        local, _ = timed_batch(films, tmp / "out0", options)
        # the fixed cost of a film: a batch of tiny films (12 frames at 96x64), 1 worker
        tiny = tmp / "tiny"
        tiny.mkdir()
        for k in range(args.tiny):
            common.write_grey_video(tiny / f"t{k:02d}.mp4", [np.full((64, 96), 40 + 10 * k, np.uint8)] * 12, 24)
        cheap = {"reference": [reference], "model": "transfer", "work_res": 64}  # the film's costs, not the model's
        tiny_ray, _ = timed_batch(tiny, tmp / "out_tiny", cheap, ray="local", workers=1)
        tiny_local, _ = timed_batch(tiny, tmp / "out_tiny0", cheap)
        decode = decode_fps(films / "reel00.mp4")
    frames = runs[0]["frames"]
    result = {
        "films": args.films, "frames_per_film": args.frames, "work_res": args.work_res, "runs": runs,
        "median_one_worker_s": common.median(r["one_worker_s"] for r in runs),
        "median_two_workers_s": common.median(r["two_workers_s"] for r in runs),
        "median_ratio": common.median(r["ratio"] for r in runs),
        "local_no_ray_s": local, "tiny_films": args.tiny, "tiny_ray_s": tiny_ray, "tiny_local_s": tiny_local,
        "decode_fps_360p": decode,
    }
    rows = [
        ["Ray, 1 worker", f"{result['median_one_worker_s']:.1f}", f"{frames / result['median_one_worker_s']:.2f}", "1.00"],
        ["Ray, 2 workers", f"{result['median_two_workers_s']:.1f}", f"{frames / result['median_two_workers_s']:.2f}",
         f"{result['median_ratio']:.2f}"],
        ["here, no Ray (1 thread)", f"{local:.1f}", f"{frames / local:.2f}", f"{result['median_one_worker_s'] / local:.2f}"],
    ]
    text = common.table(["batch", "wall s (median)", "frames/s", "speed-up over 1 worker"], rows)
    text += (f"\n\n{args.tiny} tiny films (12 frames at 96x64, `--model transfer --work-res 64`: the costs of a "
             f"film, not of a model), 1 worker: {tiny_ray:.1f} s on Ray, {tiny_local:.1f} s without Ray "
             f"({tiny_local / args.tiny:.2f} s a film); decoding alone at 640x360: {decode:.0f} frames/s.")
    common.report(f"Batch of {args.films} films x {args.frames} frames (640x360, exemplar, --work-res {args.work_res})",
                  text, result, args)


if __name__ == "__main__":
    main()
