"""Global matching: time and peak memory of the naive matcher, the chunked one and (with a
CUDA device) the fused Triton kernel, at 64x64, 128x128 and 256x256 feature grids.

Every target position of a ``g x g`` grid is matched against every reference position of
another (N = M = g^2, C = 256 unit features, D = 2 values, temperature 0.02): max, argmax
and the softmax-weighted values, as ``vidcolor.models.exemplar.correspondence.match`` computes them.

dense:      ``match_dense``, the whole N x M similarity matrix at once (skipped when that
            matrix alone would pass --dense-limit-gib, 8 GiB by default)
reference:  ``match_reference``, the same in chunks of at most 2^24 similarities
fused:      ``vidcolor.models.exemplar.kernels.fused_match`` in fp32 and in bf16 (CUDA only): tiles and an
            online softmax, never the matrix

Each case runs in a fresh process: one untimed call (compilation, first-touch), then
--runs timed calls, the median reported. Peak memory is what the calls add to what the
inputs already hold: on CPU the growth of the peak resident set size (VmHWM, reset through
/proc/self/clear_refs once the inputs are made), on CUDA ``torch.cuda.max_memory_allocated``.
On CPU the 256x256 grid takes minutes per call and is only run when asked (--grids 64 128 256).

    .venv/bin/python benchmarks/correspondence.py [--runs 3] [--grids 64 128] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

import common

GiB = 1024 ** 3
MiB = 1024 ** 2


def peak_rss() -> int:
    """Bytes: the peak resident set size of this process (since start or the last reset)."""
    return int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def run_case(case: dict) -> dict:
    """In this (fresh) process: make the inputs, call once, time ``runs`` calls."""
    from vidcolor.models.exemplar.matching import l2_normalise, match_dense, match_reference

    device, n, c, d = case["device"], case["grid"] ** 2, case["channels"], case["values"]
    torch.manual_seed(0)
    query = l2_normalise(torch.randn(1, n, c, device=device), 2)
    keys = l2_normalise(torch.randn(1, n, c, device=device), 2)
    values = torch.randn(1, n, d, device=device)
    if case["dtype"] == "bf16":
        query, keys = query.bfloat16(), keys.bfloat16()
    if case["method"] == "fused":
        from vidcolor.models.exemplar.kernels import fused_match as fn
    else:
        fn = {"dense": match_dense, "reference": match_reference}[case["method"]]
    temperature = None if case["no_soft"] else case["temperature"]
    cuda = device == "cuda"

    def call() -> float:
        t0 = time.perf_counter()
        found = fn(query, keys, values, temperature)
        if cuda:
            torch.cuda.synchronize()
        del found
        return time.perf_counter() - t0

    first = call()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        reset_peak_rss()
        base = peak_rss()
    seconds = [call() for _ in range(case["runs"])]
    peak = (torch.cuda.max_memory_allocated() if cuda else peak_rss()) - base
    return {"first_s": first, "seconds": seconds, "median_s": common.median(seconds), "peak_bytes": peak}


def measure(case: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(run_case(json.loads(sys.argv[2]))))
        return
    p = common.parser(__doc__.split("\n\n")[0], runs=3)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--grids", type=int, nargs="+", help="feature grid sides (default 64 128, and 256 on CUDA)")
    p.add_argument("--channels", type=int, default=256, help="feature channels C (default 256)")
    p.add_argument("--values", type=int, default=2, help="value channels D (default 2)")
    p.add_argument("--temperature", type=float, default=0.02, help="softmax temperature (default 0.02)")
    p.add_argument("--no-soft", action="store_true", help="max and argmax only, no softmax-weighted values")
    p.add_argument("--dense-limit-gib", type=float, default=8.0, help="skip dense when its matrix needs more (default 8)")
    args = p.parse_args()
    grids = args.grids or ([64, 128, 256] if args.device == "cuda" else [64, 128])
    methods = [("dense", "fp32"), ("reference", "fp32")]
    if args.device == "cuda":
        from vidcolor.models.exemplar.kernels import fused_match

        methods += [("fused", "fp32"), ("fused", "bf16")] if fused_match is not None else []
    results, rows = [], []
    for grid in grids:
        n = grid * grid
        for method, dtype in methods:
            case = {"device": args.device, "grid": grid, "method": method, "dtype": dtype, "channels": args.channels,
                    "values": args.values, "temperature": args.temperature, "no_soft": args.no_soft, "runs": args.runs}
            matrix = n * n * 4
            if method == "dense" and matrix > args.dense_limit_gib * GiB:
                out = {"skipped": f"needs {matrix / GiB:.0f} GiB"}
            else:
                print(f"{grid}x{grid} {method} {dtype} ...", file=sys.stderr, flush=True)
                out = measure(case)
            results.append({**case, **out})
            label = [f"{grid}x{grid}", n, method, dtype]
            if "median_s" in out:
                rows.append(label + [f"{out['median_s'] * 1000:.1f}", ", ".join(f"{s * 1000:.1f}" for s in out["seconds"]),
                                     f"{out['first_s'] * 1000:.1f}", f"{out['peak_bytes'] / MiB:.1f}",
                                     f"{matrix / MiB:.0f}", f"{n * n / out['median_s'] / 1e9:.2f}"])
            else:
                rows.append(label + [out.get("skipped") or f"failed: {out['error']}", "", "", "", f"{matrix / MiB:.0f}", ""])
    text = common.table(["grid", "N = M", "method", "dtype", "median ms", "ms per run", "first call ms",
                         "peak memory added (MiB)", "N x M fp32 matrix (MiB)", "G similarities/s"], rows)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else None
    text += (f"\n\n{args.device.upper()}{f' ({gpu})' if gpu else ''}, C = {args.channels}, D = {args.values}, "
             f"{'no softmax' if args.no_soft else f'temperature {args.temperature:g}'}; one untimed call, then "
             f"{args.runs} timed, median reported; each case in a fresh process; torch threads "
             f"{torch.get_num_threads()}. Peak memory added: "
             + ("torch.cuda.max_memory_allocated over the timed calls, less what the inputs hold."
                if args.device == "cuda" else "growth of VmHWM over the timed calls (reset once the inputs are made)."))
    common.report("Global matching", text, {"results": results, "device": args.device, "gpu": gpu}, args)


if __name__ == "__main__":
    main()
