"""Peak memory: the full pipeline's peak resident set size on a short and a long film.

The two inputs are made from a real clip (bbb_360p_bunny.mp4, 640x360, 24 fps, 12 s): its
frames are turned grey (CIE Lab L) and encoded in a loop (libx264 crf 18, no audio) to the
two lengths, so the content is realistic. Each run is a fresh ``vidcolor`` process:

    vidcolor INPUT --reference REF --model transfer --work-res 64 -o OUT --overwrite -q

(REF: the clip's first frame in colour), started by a small Python process that reports
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it (the peak RSS of that run
alone). Both lengths use identical settings; runs are interleaved (short, long, short,
long, ...). --work-res 64 (the CLI default is 256) keeps
the 60 s runs to about a minute each; decoding, the full-resolution recombination and
encoding still run at 640x360. The streaming design should make the peak independent of
the length whatever the settings, so the ratio long/short is the figure (about 1.0).

    .venv/bin/python benchmarks/memory.py [--runs 3] [--short 10] [--long 60] [--json out.json]
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import common

CLIP = "bbb_360p_bunny.mp4"


def vidcolor_command() -> list[str]:
    script = Path(sys.executable).parent / "vidcolor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vidcolor"]


# Runs the command and prints its rusage. The measured process must be started by a small
# process: on Linux, ru_maxrss also counts the memory of the process that forked it, up to
# its exec, so a child of this (large) benchmark process would report this one's peak.
MEASURE = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
if done.returncode:
    sys.exit(done.stderr.decode())
print(json.dumps({"peak_rss_mib": usage.ru_maxrss / 1024, "seconds": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime}))
"""


def measure(cmd: list[str]) -> dict:
    """Run ``cmd`` in a fresh small child; the peak RSS (MiB), wall and CPU time of ``cmd``."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed: {done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0], runs=3)
    p.add_argument("--short", type=float, default=10.0, help="short input length in seconds (default 10)")
    p.add_argument("--long", type=float, default=60.0, help="long input length in seconds (default 60)")
    p.add_argument("--work-res", type=int, default=64, help="vidcolor --work-res for both lengths (default 64)")
    args = p.parse_args()
    torch.set_num_threads(1)  # only this process's grey conversion; the measured vidcolor runs keep their defaults
    source = common.video(args, CLIP)
    frames, rate = common.decode_rgb(source)
    greys = [common.grey_levels(f) for f in frames]
    lengths = {"short": args.short, "long": args.long}
    results, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        tmp = Path(tmp)
        reference = common.save_png(tmp / "ref.png", frames[0])
        del frames
        inputs = {}
        for name, seconds in lengths.items():
            count = round(seconds * rate)
            inputs[name] = tmp / f"{name}.mp4"
            common.write_grey_video(inputs[name], itertools.islice(itertools.cycle(greys), count), rate)
            results[name] = {"seconds": seconds, "frames": count, "runs": []}
        for _ in range(args.runs):
            for name in lengths:
                cmd = vidcolor_command() + [str(inputs[name]), "--reference", str(reference), "--model", "transfer",
                                            "--work-res", str(args.work_res), "-o", str(tmp / "out.mp4"), "--overwrite", "-q"]
                results[name]["runs"].append(measure(cmd))
    ratios = [b["peak_rss_mib"] / a["peak_rss_mib"] for a, b in zip(results["short"]["runs"], results["long"]["runs"])]
    for name, r in results.items():
        r["median_peak_rss_mib"] = common.median(x["peak_rss_mib"] for x in r["runs"])
        r["median_fps"] = common.median(r["frames"] / x["seconds"] for x in r["runs"])
        rows.append([
            f"{r['seconds']:g} s ({r['frames']} frames)",
            f"{r['median_peak_rss_mib']:.0f}",
            ", ".join(f"{x['peak_rss_mib']:.0f}" for x in r["runs"]),
            f"{r['median_fps']:.2f}",
            f"{common.median(ratios):.3f}" if name == "long" else "",
        ])
    text = common.table(["input", "median peak RSS (MiB)", "peak RSS per run (MiB)", "median fps", "long/short"], rows)
    text += (f"\n\nInput: {CLIP} (640x360, {float(rate):g} fps) turned grey and looped; `--model transfer --work-res "
             f"{args.work_res}`, CPU; {args.runs} interleaved runs, each a fresh process; long/short = median of "
             f"the per-pair ratios of peak RSS (ru_maxrss of each run, RUSAGE_CHILDREN of a fresh small parent).")
    results["ratio_long_short"] = common.median(ratios)
    results["ratios"] = ratios
    common.report("Peak memory", text, {"results": results, "work_res": args.work_res, "clip": CLIP}, args)


if __name__ == "__main__":
    main()
