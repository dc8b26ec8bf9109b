"""Learn the exemplar network's per-pixel confidence from its similarity maps, and store it
in the network's file.

The confidence decides, per pixel, how much of the network's colour is kept and how much of
the prior's (the best installed automatic network's colour) takes its place:
``ab = c * ab_exemplar + (1 - c) * ab_prior`` with ``c = sigmoid(w . similarity + b)``.
``w`` and ``b`` are fitted to minimise the error of that blend against the colour originals,
on pairs of a target frame and a reference that is (a) a frame of the same shot, (b) a frame
of another clip of the same source (related), (c) a frame of an unrelated clip, in equal
numbers, from training clips only (never the held-out ones).

    python train/calibrate_confidence.py --data ../shared/train/videos runs/data/train/videos \\
        [--weights vidcolor/weights/exemplar.safetensors] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch

from vidcolor.colorizers import best_automatic, create
from vidcolor.io.media import video_frames
from vidcolor.models import weights as weights_io
from vidcolor.models.exemplar.network import load
from vidcolor.models.weights import default_weights
from vidcolor.ops import color


def source_of(path: Path) -> str:
    """Clips cut from one film share a name up to their last ``_`` (``intel_asl_yes``)."""
    return path.stem.rsplit("_", 1)[0]


def two_frames(path: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first frame and one 1.5 s later (or the last) as sRGB ``(1, 3, h, w)`` at ``size``."""
    frames = list(video_frames(path, max_frames=40))
    pick = [frames[0], frames[min(len(frames) - 1, 36)]]
    out = []
    for rgb in pick:
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        out.append(color.resize(t, color.work_size(*t.shape[-2:], size)))
    return out[0], out[1]


def pairs(clips: list[Path], seed: int = 0) -> list[tuple[Path, Path, str]]:
    """(target clip, reference clip, kind) for every clip: same, related (when its source has
    another clip) and unrelated."""
    rng = random.Random(seed)
    out = []
    for clip in clips:
        out.append((clip, clip, "same"))
        related = [c for c in clips if c != clip and source_of(c) == source_of(clip)]
        if related:
            out.append((clip, rng.choice(related), "related"))
        out.append((clip, rng.choice([c for c in clips if source_of(c) != source_of(clip)]), "unrelated"))
    return out


@torch.no_grad()
def collect(clips: list[Path], weights: Path, size: int, stride: int):
    net = load(weights)
    prior = create(best_automatic(), device="cpu")
    frames = {c: two_frames(c, size) for c in clips}
    rows = []
    for target_clip, reference_clip, kind in pairs(clips):
        target = frames[target_clip][1]
        reference = frames[reference_clip][0]
        lab = color.rgb_to_lab(target)
        lightness, truth = lab[:, :1], lab[:, 1:]
        found = net.similarity(lightness, net.prepare(reference))
        ab = net.colorize(lightness, found.warped_ab, found.similarity)
        guess = prior.colorize(lightness, None)
        take = (slice(None), slice(None), slice(0, None, stride), slice(0, None, stride))
        rows.append((kind, found.similarity[take].flatten(2)[0].T, ab[take].flatten(2)[0].T,
                     guess[take].flatten(2)[0].T, truth[take].flatten(2)[0].T))
    return rows


def blend_error(c, ab, guess, truth):
    return (c * ab + (1 - c) * guess - truth).norm(dim=1)


def fit(rows, steps: int = 400):
    """``w``, ``b`` of the confidence that minimises the blend's mean ab error (Adam on
    standardised similarities, then folded back: the maps are close to one another and to 1)."""
    sims = torch.cat([r[1] for r in rows])
    ab, guess, truth = (torch.cat([r[i] for r in rows]) for i in (2, 3, 4))
    mean, spread = sims.mean(0), sims.std(0).clamp_min(1e-6)
    x = (sims - mean) / spread
    v = torch.zeros(sims.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([v, b], lr=0.02)
    for _ in range(steps):
        c = torch.sigmoid(x @ v + b).unsqueeze(1)
        loss = blend_error(c, ab, guess, truth).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    v, b = v.detach(), b.detach()
    return v / spread, b - (mean / spread) @ v


def report(rows, w, b) -> None:
    for kind in ("same", "related", "unrelated"):
        chosen = [r for r in rows if r[0] == kind]
        if not chosen:
            continue
        sims, ab, guess, truth = (torch.cat([r[i] for r in chosen]) for i in (1, 2, 3, 4))
        c = torch.sigmoid(sims @ w + b).unsqueeze(1)
        print(f"{kind:>9} ({len(chosen):2d} pairs): ab error network {blend_error(1, ab, 0, truth).mean():6.2f}  "
              f"prior {blend_error(0, ab, guess, truth).mean():6.2f}  blend {blend_error(c, ab, guess, truth).mean():6.2f}"
              f"  mean confidence {c.mean():.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, nargs="+", required=True, help="folders of training clips")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="where to write the network with its confidence")
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--cache", type=Path, default=None, help="keep the collected samples here, and reuse them")
    args = p.parse_args()
    torch.manual_seed(0)
    weights = args.weights or default_weights("exemplar")
    clips = sorted(c for folder in args.data for c in folder.iterdir() if c.suffix in (".mp4", ".avi", ".mkv"))
    if args.cache is not None and args.cache.exists():
        rows = torch.load(args.cache, weights_only=True)
    else:
        rows = collect(clips, weights, args.size, args.stride)
        if args.cache is not None:
            torch.save(rows, args.cache)
    train = [r for i, r in enumerate(rows) if i % 4 != 3]
    check = [r for i, r in enumerate(rows) if i % 4 == 3]
    w, b = fit(train)
    print("confidence weights", [round(float(x), 3) for x in w], "bias", round(float(b), 3))
    print("fitted on 3/4 of the pairs; the other quarter:")
    report(check, w, b)
    if args.out:
        store(weights, args.out, w, b, f"fitted by train/calibrate_confidence.py on {len(train)} pairs of "
                                       f"{len(clips)} training clips ({', '.join(str(f) for f in args.data)})")
        print(f"wrote {args.out}")


def store(source: Path, out: Path, w: torch.Tensor, b: torch.Tensor, note: str) -> None:
    """The network of ``source`` with its confidence, as ``out``: the same tensors in the same
    storage precision, the confidence head added, ``confidence`` set in its config."""
    metadata, state = weights_io.read(source)
    config = json.loads(metadata["config"])
    dtype = next(iter(state.values())).dtype
    state["confidence_head.weight"] = w.view(1, -1, 1, 1).to(dtype)
    state["confidence_head.bias"] = b.view(1).to(dtype)
    metadata = {**metadata, "config": json.dumps({**config, "confidence": True}), "confidence": note}
    weights_io.write(out, state, metadata)
    load(out)  # every key and shape, as users will load it


if __name__ == "__main__":
    main()
