"""Reference recommendation (He et al. 2018, section 4): gallery index build time per image,
index load time, and query time of the two-stage ranking, with the retrieval accuracy it
gets on known matches.

The gallery: every photo under ``EVAL/photos`` (linked from a temporary folder, not
copied), plus transformed copies of them (mirrored, cropped, tone-curved; JPEG) until the
gallery holds ``--size`` images. The queries: ``--queries`` photos spread over the set,
each turned grey (CIE L), cropped by 6 % and brightened by 8 levels. A query is answered
right when the top recommendation is the photo itself or one of its transformed copies.

Timed: building the index from nothing (``open_gallery``: reading, describing with the
default backbone, PCA, writing the index file), opening it again unchanged (what each
``vidcolor recommend`` pays before ranking), and per query: describing the target and
ranking (global cosine over the gallery, then the local score of equation 8 on the best
``--candidates``). Medians over the queries.

    .venv/bin/python benchmarks/recommend.py [--size 2000] [--queries 60] [--json out.json]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import common
from vidcolor import console
from vidcolor.ops.color import rgb_to_grey_levels
from vidcolor.io.images import list_images, read_rgb
from vidcolor.film.recommend import (
    CANDIDATES,
    INDEX_NAME,
    global_scores,
    open_gallery,
    rank,
    recommendation_backbone,
)


def variant(rgb: np.ndarray, round_: int) -> np.ndarray:
    """A transformed copy of a photo: mirrored, cropped and tone-curved, differently each round."""
    h, w = rgb.shape[:2]
    cut = 0.04 + 0.03 * (round_ % 3)
    out = rgb[int(h * cut) : h - int(h * cut / 2), int(w * cut / 2) : w - int(w * cut)]
    if round_ % 2 == 0:
        out = out[:, ::-1]
    gamma = (0.85, 1.15, 0.95)[round_ % 3]
    return np.ascontiguousarray((255 * (out / 255.0) ** gamma).astype(np.uint8))


def query_grey(rgb: np.ndarray) -> np.ndarray:
    """A target: the photo's grey, cropped by about 6 %, 8 levels brighter."""
    grey = rgb_to_grey_levels(rgb)
    h, w = grey.shape
    grey = grey[h // 24 : h - h // 32, w // 20 : w - w // 32]
    return np.ascontiguousarray(np.clip(grey.astype(np.int16) + 8, 0, 255).astype(np.uint8))


def make_gallery(photos: list[Path], folder: Path, size: int) -> dict[str, int]:
    """Link the photos and write transformed copies up to ``size`` images; returns the
    source photo number of every gallery file (relative path)."""
    source = {}
    for i, photo in enumerate(photos[:size]):
        link = folder / "photos" / f"{i:05d}_{photo.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(photo.resolve())
        source[link.relative_to(folder).as_posix()] = i
    for k in range(max(0, size - len(photos))):
        i, round_ = k % len(photos), k // len(photos)
        path = folder / "variants" / f"{i:05d}_{round_}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = variant(read_rgb(photos[i]), round_)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        source[path.relative_to(folder).as_posix()] = i
    return source


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=2000, help="gallery images (default 2000)")
    p.add_argument("--queries", type=int, default=60, help="queries (default 60)")
    p.add_argument("--candidates", type=int, default=CANDIDATES, help=f"local ranking shortlist (default {CANDIDATES})")
    p.add_argument("--torch-threads", type=int, help="torch.set_num_threads (default: torch's)")
    args = p.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    photos, _ = list_images(args.eval / "photos") if (args.eval / "photos").is_dir() else ([], [])
    if not photos:
        raise SystemExit(f"{args.eval / 'photos'}: no photos (give the evaluation folder with --eval or VIDCOLOR_EVAL)")
    console.setup(quiet=True)
    backbone = recommendation_backbone(None)
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        folder = Path(tmp)
        source = make_gallery(photos, folder, args.size)

        t0 = time.perf_counter()
        index = open_gallery(folder, backbone)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = open_gallery(folder, backbone)
        reopen = time.perf_counter() - t0
        index_mb = (folder / INDEX_NAME).stat().st_size / 2**20

        origin = [source[p.relative_to(folder).as_posix()] for p in index.paths]
        picked = np.linspace(0, min(len(photos), args.size) - 1, args.queries).round().astype(int)
        describe_s, rank_s, two_stage, global_only = [], [], 0, 0
        for i in picked:
            grey = query_grey(read_rgb(photos[i]))
            t0 = time.perf_counter()
            target = index.describe(grey)
            t1 = time.perf_counter()
            found = rank(index, target, top=1, candidates=args.candidates)
            t2 = time.perf_counter()
            describe_s.append(t1 - t0)
            rank_s.append(t2 - t1)
            two_stage += source[found[0].path.relative_to(folder).as_posix()] == i
            global_only += origin[int(global_scores(index, target).argmax())] == i
    n = len(picked)
    positions = len(index.local) / len(index)
    rows = [
        ["build the index (from nothing)", f"{1000 * build / len(index):.1f} ms per image", f"{build:.1f} s for {len(index)} images"],
        ["open the index (unchanged)", f"{1000 * reopen:.0f} ms", f"index file {index_mb:.1f} MiB"],
        ["query: describe the target", f"{1000 * common.median(describe_s):.1f} ms", "median"],
        ["query: rank (global, then local on the shortlist)", f"{1000 * common.median(rank_s):.1f} ms", f"median; max {1000 * max(rank_s):.1f} ms"],
        ["query: total", f"{1000 * common.median(a + b for a, b in zip(describe_s, rank_s)):.1f} ms", "median"],
    ]
    text = common.table(["step", "time", "notes"], rows)
    text += "\n\n" + common.table(
        ["ranking", "top-1 right"],
        [["global only (cosine of pooled features)", f"{global_only}/{n} ({global_only / n:.0%})"],
         [f"two-stage (global top {args.candidates}, then local, beta 0.25)", f"{two_stage}/{n} ({two_stage / n:.0%})"]],
    )
    from vidcolor.models.weights import default_weights

    installed = default_weights("exemplar")
    source = f"the trained one of {installed.name}" if installed else "fixed random initialisation"
    text += (
        f"\n\nGallery: {len(index)} images ({min(len(photos), args.size)} photos from {args.eval / 'photos'}, the rest "
        f"transformed copies); backbone `compact` ({source}), short side 224, "
        f"{positions:.0f} local positions per image on average; global PCA {index.global_pca.dims} dims, local PCA "
        f"{index.local_pca.dims} dims; CPU, torch threads {torch.get_num_threads()}; {n} queries."
    )
    results = {
        "images": len(index), "build_s": build, "build_ms_per_image": 1000 * build / len(index), "reopen_s": reopen,
        "index_mib": index_mb, "describe_s": describe_s, "rank_s": rank_s, "queries": n,
        "top1_two_stage": two_stage, "top1_global": global_only, "candidates": args.candidates,
        "torch_threads": torch.get_num_threads(),
    }
    common.report("Reference recommendation", text, results, args)


if __name__ == "__main__":
    main()
