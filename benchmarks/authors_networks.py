"""Speed and memory of the authors' networks inside vidcolor: ``devc`` (Zhang et al. 2019) and
``ddcolor`` (Kang et al. 2023, tiny and large), at 640x360 and 1920x1080, at vidcolor's
default work resolution and at the authors' working sizes.

The weights are random values at the real shapes, written here in vidcolor's format (the
time and memory of a network do not depend on its values; the authors' files are not
downloaded). Each configuration runs in a fresh process: the first ``--frames`` frames of
the clip are decoded, a reference is prepared (devc: the clip's first frame in colour), one
batch warms up, then the frames go through ``Engine.colorize`` in batches of 4 as one shot
(the model and the full-size stages: guided upsampling, legal colour, RGB), timed;
decoding and encoding are not included (``throughput.py`` measures the whole pipeline).
Peak memory is the run's maximum resident set size, read by a small parent process
(``RUSAGE_CHILDREN``): on Linux a process's own ``ru_maxrss`` also counts the memory of the
process that forked it.

The authors' working sizes: DEVC colours at 216x384 (``--work-res 216``); DDColor resizes
every picture to 512x512 and brings ab back to the picture's own size (``--work-res`` at the
frame's short side).

    .venv/bin/python benchmarks/authors_networks.py [--frames 9] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

CLIPS = {"360p": "bbb_360p_bunny.mp4", "1080p": "bbb_1080p_5s.avi"}
# a small parent: runs the measurement (which writes its figures to a file) and adds its peak RSS
LAUNCH = """
import json, resource, subprocess, sys
subprocess.run(sys.argv[2:], check=True)
result = json.loads(open(sys.argv[1]).read())
result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
open(sys.argv[1], "w").write(json.dumps(result))
"""
CONFIGS = [  # model, weights file, work resolution per size (None: vidcolor's default, 256)
    ("devc", "devc", {"360p": [256, 216], "1080p": [256, 216]}),
    ("ddcolor", "ddcolor_tiny", {"360p": [256, 360], "1080p": [256, 1080]}),
    ("ddcolor", "ddcolor_large", {"360p": [256, 360], "1080p": [256, 1080]}),
]


def write_weights(folder: Path) -> dict[str, Path]:
    from vidcolor.models import automatic
    from vidcolor.models.ddcolor.network import DDColor
    from vidcolor.models.devc.network import DEVC, save

    files = {"devc": folder / "devc.safetensors", "ddcolor_tiny": folder / "ddcolor_tiny.safetensors",
             "ddcolor_large": folder / "ddcolor_large.safetensors"}
    save(DEVC().eval(), files["devc"])
    automatic.save(DDColor(DDColor.Config(encoder="tiny")).eval(), files["ddcolor_tiny"])
    automatic.save(DDColor(DDColor.Config(encoder="large")).eval(), files["ddcolor_large"])
    return files


def measure(model: str, weights: str, source: str, work_res: int, frames: int, device: str) -> dict:
    """One configuration, in this process."""
    import numpy as np
    import torch

    from vidcolor.film.engine import Engine

    rgb, _ = common.decode_rgb(Path(source), max_frames=frames + 4)
    greys = [common.grey_levels(f) for f in rgb]
    engine = Engine(model, device=device, work_res=work_res, weights=weights)
    prepared = engine.prepare(rgb[0]) if engine.needs_reference else engine.prepare(None)
    engine.colorize(greys[:4], prepared, sequence=True)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    done = 0
    for k in range(4, 4 + frames, 4):
        out = engine.colorize(greys[k : k + 4], prepared, sequence=True)
        done += len(out)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"frames": done, "seconds": seconds, "fps": done / seconds, "s_per_frame": seconds / done,
            "chroma": float(np.abs(out.astype(np.int16)[..., 0] - out.astype(np.int16)[..., 2]).mean()),
            "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        model, weights, source, work_res, frames, device, out = sys.argv[2:9]
        Path(out).write_text(json.dumps(measure(model, weights, source, int(work_res), int(frames), device)))
        return
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=8, help="timed frames per configuration (default 8)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--sizes", nargs="+", choices=list(CLIPS), default=list(CLIPS))
    p.add_argument("--models", nargs="+", choices=["devc", "ddcolor_tiny", "ddcolor_large"],
                   default=["devc", "ddcolor_tiny", "ddcolor_large"])
    args = p.parse_args()
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="vidcolor-authors-") as tmp:
        files = write_weights(Path(tmp))
        for size in args.sizes:
            source = common.video(args, CLIPS[size])
            for model, key, work_sizes in CONFIGS:
                if key not in args.models:
                    continue
                for work_res in work_sizes[size]:
                    out = Path(tmp) / "result.json"
                    subprocess.run([sys.executable, "-c", LAUNCH, str(out), sys.executable, __file__, "--one", model,
                                    str(files[key]), str(source), str(work_res), str(args.frames), args.device, str(out)],
                                   check=True)
                    r = json.loads(out.read_text())
                    r.update(model=key, size=size, work_res=work_res)
                    results.append(r)
                    rows.append([key, size, work_res, f"{r['fps']:.3f}", f"{r['s_per_frame']:.2f}",
                                 f"{r['peak_rss_mib']:.0f}", f"{r['gpu_peak_mib']:.0f}" if r["gpu_peak_mib"] else ""])
                    print(" | ".join(map(str, rows[-1])), flush=True)
    text = common.table(["model", "size", "--work-res", "fps", "s/frame", "peak RSS MiB", "GPU peak MiB"], rows)
    common.report("The authors' networks: speed and memory", text, {"results": results}, args)


if __name__ == "__main__":
    main()
