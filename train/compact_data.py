"""A small copy of training media: every photo as a JPEG and every video re-encoded, both
with the short side brought down to ``--size`` pixels (the training loader keeps media at
160 by default, so nothing it uses is lost). The copy of ``runs/data/train`` is about 10 MB,
small enough to move to a training machine. With ``--frames``, each video becomes a folder
``NAME.frames`` of JPEG frames (up to 48, evenly spaced: what the loader keeps of a video),
which a machine without PyAV trains from too (``train/gpu.sh``).

    python train/compact_data.py runs/data/train --out runs/data/train_small [--size 160] [--frames]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from vidcolor.io.media import find_items, video_frames
from vidcolor.io.images import read_rgb


def shrink(rgb: np.ndarray, size: int) -> np.ndarray:
    """Short side ``size`` (never enlarged); sides rounded to even numbers for 4:2:0 video."""
    h, w = rgb.shape[:2]
    scale = min(1.0, size / min(h, w))
    nh, nw = max(2, round(h * scale / 2) * 2), max(2, round(w * scale / 2) * 2)
    return cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA) if (nh, nw) != (h, w) else rgb


def write_photo(rgb: np.ndarray, path: Path, quality: int) -> None:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"{path}: JPEG encoding failed")
    path.write_bytes(data.tobytes())


def write_video(source: Path, path: Path, size: int, crf: int) -> int:
    with av.open(str(source)) as probe:
        rate = probe.streams.video[0].average_rate or 25
    count = 0
    with av.open(str(path), "w") as out:
        stream = None
        for rgb in video_frames(source):
            rgb = shrink(rgb, size)
            if stream is None:
                stream = out.add_stream("libx264", rate=rate)
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "medium"}
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            count += 1
        if stream is not None:
            out.mux(stream.encode(None))
    return count


def write_frames(source: Path, folder: Path, size: int, quality: int, keep: int = 48) -> int:
    """Up to ``keep`` evenly spaced frames of a video as JPEGs ``00000.jpg``... in ``folder``."""
    from vidcolor.io.media import frame_count

    step = max(1, frame_count(source, None) // keep)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for k, rgb in enumerate(video_frames(source)):
        if k % step == 0 and count < keep:
            write_photo(shrink(rgb, size), folder / f"{count:05d}.jpg", quality)
            count += 1
    return count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, nargs="+", help="folders of colour photos and videos")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=160, help="short side in pixels (default 160)")
    p.add_argument("--quality", type=int, default=92, help="JPEG quality (default 92)")
    p.add_argument("--crf", type=int, default=20, help="libx264 quality (default 20)")
    p.add_argument("--frames", action="store_true", help="videos as folders of JPEG frames (NAME.frames)")
    args = p.parse_args()
    total = 0
    for folder in args.data:
        for item in find_items(folder):
            target = args.out / folder.name / item.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if item.kind == "photo":
                target = target.with_suffix(".jpg")
                write_photo(shrink(read_rgb(item.path), args.size), target, args.quality)
                total += target.stat().st_size
            elif args.frames:
                target = target.with_suffix(".frames")
                write_frames(item.path, target, args.size, args.quality)
                total += sum(f.stat().st_size for f in target.iterdir())
            else:
                target = target.with_suffix(".mp4")
                write_video(item.path, target, args.size, args.crf)
                total += target.stat().st_size
    print(f"{args.out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
