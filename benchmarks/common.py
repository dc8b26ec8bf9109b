"""Helpers shared by the benchmark scripts: paths, options, machine description, media
reading and writing, and markdown/JSON output.

The evaluation media live outside the repository, in ``../shared/eval`` relative to the
repository root; ``--eval DIR`` or the ``VIDCOLOR_EVAL`` environment variable points
elsewhere. They are only read, never copied into the repository.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EVAL = Path(os.environ.get("VIDCOLOR_EVAL", ROOT.parent / "shared" / "eval"))
LOAD_AT_START = os.getloadavg()[0]
TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before a script changes it


# -- options and output -------------------------------------------------------------------


def parser(description: str, runs: int | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--eval", type=Path, default=DEFAULT_EVAL, help=f"evaluation media folder (default {DEFAULT_EVAL})")
    p.add_argument("--json", type=Path, help="also write the results and the machine description as JSON here")
    if runs is not None:
        p.add_argument("--runs", type=int, default=runs, help=f"repetitions; medians are reported (default {runs})")
    return p


def video(args: argparse.Namespace, name: str) -> Path:
    path = args.eval / "videos" / name
    if not path.exists():
        sys.exit(f"{path}: not found (give the evaluation folder with --eval or VIDCOLOR_EVAL)")
    return path


def median(values) -> float:
    return float(statistics.median(values))


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table; floats are written as given (format them before)."""
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict:
    """What the figures were measured on, and at which commit."""
    import cv2

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        ram = f"{kb / 1024 ** 2:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} (kernel {platform.release()})"
    except OSError:
        pass
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no", "vidcolor"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _run(["git", "rev-parse", "--short", "HEAD"]) + (" (vidcolor/ modified)" if dirty else ""),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "ram": ram,
        "os": os_name,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_default_threads": TORCH_DEFAULT_THREADS,
        "av": av.__version__,
        "libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "load_1min": f"{LOAD_AT_START:.2f} at start, {os.getloadavg()[0]:.2f} at end",
    }


def machine_line(m: dict) -> str:
    return (
        f"{m['date']}, commit {m['commit']}; {m['nproc']} x {m['cpu']}, {m['ram']} RAM, {m['os']}; "
        f"Python {m['python']}, torch {m['torch']} ({m['torch_default_threads']} threads by default), av {m['av']} (libavcodec {m['libavcodec']}), "
        f"OpenCV {m['opencv']}, numpy {m['numpy']}; load average (1 min) {m['load_1min']}"
    )


def report(title: str, text: str, results: dict, args: argparse.Namespace) -> None:
    """Print the markdown (title, machine line, tables) and write the JSON if asked."""
    m = machine()
    print(f"## {title}\n")
    print(f"Command: `{_command()}`  ")
    print(f"Machine: {machine_line(m)}\n")
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"title": title, "command": _command(), "machine": m, **results}, indent=2, default=str))


def _command() -> str:
    exe = Path(sys.executable)
    try:
        exe = exe.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join([str(exe), *sys.argv])


# -- media ----------------------------------------------------------------------------------


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as uint8 sRGB ``(H, W, 3)``, using the colour matrix and range the
    stream declares (BT.601 when it declares none)."""
    space = frame.colorspace if frame.colorspace in (1, 5, 6, 7, 9) else 5
    return frame.reformat(
        format="rgb24", src_colorspace=space, src_color_range=frame.color_range or 1, dst_color_range=2
    ).to_ndarray()


def decode_rgb(path: Path, max_frames: int | None = None, start_frame: int = 0) -> tuple[list[np.ndarray], Fraction]:
    """Frames ``start_frame .. start_frame + max_frames`` of a video as uint8 RGB, and its
    frame rate."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        for i, frame in enumerate(container.decode(stream)):
            if i < start_frame:
                continue
            if max_frames is not None and len(frames) >= max_frames:
                break
            frames.append(to_rgb(frame))
    return frames, rate


def grey_levels(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> uint8 grey levels carrying the CIE Lab L of the original (the protocol's
    grey), via vidcolor's own conversion."""
    from vidcolor.ops.color import rgb_to_grey_levels

    return rgb_to_grey_levels(rgb)


def write_grey_video(path: Path, greys, rate: Fraction, lossless: bool = False) -> int:
    """Encode grey frames ``(H, W)`` uint8: losslessly (FFV1, gray, in .mkv) for analysis,
    or as a typical grey film (libx264 crf 18, yuv420p with neutral chroma, full range
    tagged so the grey levels come back unchanged up to compression). Returns the count."""
    count = 0
    with av.open(str(path), "w") as container:
        stream = None
        for grey in greys:
            if stream is None:
                h, w = grey.shape
                if lossless:
                    stream = container.add_stream("ffv1", rate=rate)
                    stream.pix_fmt = "gray"
                else:
                    stream = container.add_stream("libx264", rate=rate)
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "18", "preset": "veryfast"}
                    stream.codec_context.color_range = 2
                stream.width, stream.height = w, h
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(grey), format="gray")
            if not lossless:
                frame = frame.reformat(format="yuv420p", src_color_range=2, dst_color_range=2)
                frame.color_range = 2
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        if stream is not None:
            for packet in stream.encode(None):
                container.mux(packet)
    return count


def save_png(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path
