"""A contact sheet of the worst frames of a model in exemplar mode, to look at.

Each clip under DATA is coloured through the film loop from the first frame of the next clip
in sorted order (as ``vidcolor eval --reference-mode exemplar``); every fourth frame is
scored by PSNR against its colour original, and the ``--count`` worst are drawn one per row:
grey input, reference, output, original. Their clip, frame, PSNR and the model's mean
confidence are printed.

    .venv/bin/python benchmarks/worst_frames.py --data DIR --out sheet.png [--model exemplar] [--count 10]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidcolor import console
from vidcolor.eval.metrics import psnr
from vidcolor.film.engine import Engine
from vidcolor.film.loop import FilmLoop, FixedReference
from vidcolor.io.media import find_items, first_frame, video_frames
from vidcolor.ops import color

ROW_HEIGHT = 120


@dataclass
class Frame:
    index: int
    time: float
    grey: np.ndarray
    rgb: np.ndarray


def row(images: list[np.ndarray]) -> np.ndarray:
    def fit(image: np.ndarray) -> np.ndarray:
        image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
        return cv2.resize(image, (round(image.shape[1] * ROW_HEIGHT / image.shape[0]), ROW_HEIGHT))

    return np.concatenate([fit(i) for i in images], axis=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="exemplar")
    p.add_argument("--max-frames", type=int, default=24)
    p.add_argument("--count", type=int, default=10)
    args = p.parse_args()
    console.setup(quiet=True)
    engine = Engine(args.model, device="cpu", smooth=True)
    clips = [item for item in find_items(args.data) if item.kind == "video"]
    scored = []
    for k, clip in enumerate(clips):
        reference = first_frame(clips[(k + 1) % len(clips)])
        frames = (Frame(i, i / 24, color.rgb_to_grey_levels(rgb), rgb)
                  for i, rgb in enumerate(video_frames(clip.path, args.max_frames)))
        for batch in FilmLoop(engine, FixedReference(engine, reference), 4).run(frames):
            confidence = float(np.mean(batch.confidence)) if batch.confidence else float("nan")
            for frame, out in zip(batch.frames, batch.rgb):
                if frame.index % 4 == 0:
                    scored.append((psnr(out, frame.rgb), clip.name, frame.index, confidence,
                                   row([frame.grey, reference, out, frame.rgb])))
    scored.sort(key=lambda s: s[0])
    worst = scored[: args.count]
    for value, name, index, confidence, _ in worst:
        print(f"{name} frame {index}: PSNR {value:.2f} dB, confidence {confidence:.2f}")
    width = max(r[4].shape[1] for r in worst)
    sheet = np.concatenate([np.pad(r[4], ((0, 3), (0, width - r[4].shape[1]), (0, 0))) for r in worst])
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
