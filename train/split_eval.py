"""Make training and validation folders (symbolic links, nothing copied) from the shared
evaluation media: ImageNet sample photos and four clips to train on, four other clips held
out for validation and for ``vidcolor eval``.

    python train/split_eval.py [--eval ../shared/eval] [--out runs/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_CLIPS = ("bbb_360p_bunny", "bbb_360p_nature", "sam2_03_blocks", "sintel_trailer_a")
HELD_OUT_CLIPS = ("bbb_360p_bird", "sam2_01_dog", "sam2_bedroom", "sintel_trailer_b")


def link(source: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    if not target.exists():
        target.symlink_to(source.resolve())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "data")
    args = p.parse_args()
    videos = args.eval / "videos"
    for name in TRAIN_CLIPS:
        link(videos / f"{name}.mp4", args.out / "train" / "videos")
    for photo in sorted((args.eval / "photos" / "imagenet_sample").iterdir()):
        link(photo, args.out / "train" / "imagenet_sample")
    for name in HELD_OUT_CLIPS:
        link(videos / f"{name}.mp4", args.out / "val")
    print(f"train: {args.out / 'train'}\nheld out: {args.out / 'val'}")


if __name__ == "__main__":
    main()
