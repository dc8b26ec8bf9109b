"""Shot detection: precision and recall of vidcolor's cut detector at several thresholds.

Two test films, both grey (CIE Lab L), written losslessly and read back by
``vidcolor.film.shots.scan_shots``:

* ``concat``: 2-second segments (48 frames, played at 24 fps) of eval clips, resized to
  640x360 and joined end to end, so every join is a hard cut at a known frame. The
  segments were checked by eye (contact sheets of every 4th frame) to hold no cut of their
  own; Big Buck Bunny clips do contain cuts (bird at 30, bunny at 41 and 242, nature at
  237), which the segments avoid. Two joins are jump cuts: two segments of the same shot
  seconds apart (same room or landscape), the hardest kind.
* ``sintel``: the two Sintel trailer clips as they are, with their own cuts marked by eye:
  trailer_a at frames 76 and 121, trailer_b at 7, 145, 233 and 299 (trailer_a 196-219 is a
  dragon crossing, trailer_b 186-212 a pan behind a pillar: no cuts there).

A detection within +-1 frame of a true cut counts once (one-to-one matching); the first
frame of a film is not a detection.

The default thresholds bracket the detector's default (vidcolor.film.shots.DEFAULT_THRESHOLD,
marked with *) and include 0.2 to 0.5.

``--flicker A`` gives both films the exposure flicker of old film: each frame's grey levels
times its own gain, drawn uniformly from [1 - A, 1 + A] (seeded), so that every frame is a
little lighter or darker than the one before with nothing cut.

    .venv/bin/python benchmarks/shots.py [--thresholds 0.08 0.12 ...] [--flicker 0.08] [--json out.json]
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

import common
from vidcolor.film.shots import DEFAULT_THRESHOLD, scan_shots

SIZE = (640, 360)
SEGMENT = 48  # frames
# (clip, first frame), in film order; consecutive segments come from different shots
SEGMENTS = [
    ("sam2_01_dog.mp4", 0),
    ("bbb_360p_bunny.mp4", 48),
    ("sam2_03_blocks.mp4", 0),
    ("bbb_360p_nature.mp4", 60),
    ("sam2_bedroom.mp4", 0),
    ("sam2_bedroom.mp4", 150),  # jump cut: same room, 5 s later
    ("bbb_360p_bird.mp4", 40),
    ("sam2_01_dog.mp4", 150),
    ("bbb_360p_nature.mp4", 238),
    ("sam2_03_blocks.mp4", 150),
    ("bbb_360p_bunny.mp4", 100),
    ("bbb_360p_bunny.mp4", 190),  # jump cut: same shot, 4 s later
    ("bbb_360p_bird.mp4", 96),
    ("sam2_bedroom.mp4", 100),
]
SINTEL_CUTS = {"sintel_trailer_a.mp4": [76, 121], "sintel_trailer_b.mp4": [7, 145, 233, 299]}


def flickering(greys, amplitude: float, seed: int = 0):
    """The frames with old film's exposure flicker: each one's levels times a gain in
    [1 - amplitude, 1 + amplitude] of its own."""
    rng = np.random.default_rng(seed)
    for grey in greys:
        gain = 1.0 + amplitude * rng.uniform(-1.0, 1.0)
        yield np.clip(grey.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def concat_film(args, path: Path) -> list[int]:
    """Write the concatenated grey film; return its true cut frames."""
    greys, cuts = [], []
    for clip, first in SEGMENTS:
        frames, _ = common.decode_rgb(common.video(args, clip), max_frames=SEGMENT, start_frame=first)
        assert len(frames) == SEGMENT, (clip, first, len(frames))
        if greys:
            cuts.append(len(greys))
        greys += [common.grey_levels(cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA)) for f in frames]
    common.write_grey_video(path, flickering(greys, args.flicker), Fraction(24), lossless=True)
    return cuts


def score(detected: list[int], truth: list[int], tolerance: int = 1) -> dict:
    unmatched = set(truth)
    hits = 0
    for d in detected:
        match = min((t for t in unmatched if abs(t - d) <= tolerance), key=lambda t: abs(t - d), default=None)
        if match is not None:
            unmatched.discard(match)
            hits += 1
    return {"detected": detected, "hits": hits, "false": len(detected) - hits, "missed": sorted(unmatched)}


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--thresholds", type=float, nargs="+",
                   default=sorted({0.08, 0.12, 0.16, 0.2, 0.3, 0.4, 0.5, DEFAULT_THRESHOLD}))
    p.add_argument("--flicker", type=float, default=0.0, help="exposure flicker: each frame's gain within 1 +- this")
    args = p.parse_args()
    torch.set_num_threads(1)  # only the grey conversion uses torch; one thread is much faster on a busy 2-core machine
    films = {}
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        tmp = Path(tmp)
        films["concat"] = (tmp / "concat.mkv", concat_film(args, tmp / "concat.mkv"))
        for clip, cuts in SINTEL_CUTS.items():
            frames, rate = common.decode_rgb(common.video(args, clip))
            path = tmp / f"{Path(clip).stem}.mkv"
            common.write_grey_video(path, flickering((common.grey_levels(f) for f in frames), args.flicker), rate,
                                    lossless=True)
            films[Path(clip).stem] = (path, cuts)
        results = {}
        for threshold in args.thresholds:
            results[threshold] = {
                name: score([s.start_frame for s in scan_shots(path, threshold)[1:]], truth)
                for name, (path, truth) in films.items()
            }
    rows = []
    for threshold, per_film in results.items():
        for group, names in (("concat", ["concat"]), ("sintel", [n for n in per_film if n != "concat"])):
            truth = sum(len(films[n][1]) for n in names)
            hits = sum(per_film[n]["hits"] for n in names)
            detected = sum(len(per_film[n]["detected"]) for n in names)
            precision = hits / detected if detected else 1.0
            missed = "; ".join(f"{n}: {per_film[n]['missed']}" for n in names if per_film[n]["missed"])
            false = "; ".join(f"{n}: {[d for d in per_film[n]['detected'] if all(abs(d - t) > 1 for t in films[n][1])]}"
                              for n in names if per_film[n]["false"])
            mark = "*" if threshold == DEFAULT_THRESHOLD else ""
            rows.append([f"{threshold:g}{mark}", group, truth, detected, hits, f"{precision:.2f}", f"{hits / truth:.2f}",
                         missed or "-", false or "-"])
    text = common.table(["threshold", "film", "true cuts", "detections", "correct", "precision", "recall",
                         "missed cuts (frame)", "false detections (frame)"], rows)
    concat_cuts = films["concat"][1]
    text += (f"\n\nconcat: {len(SEGMENTS)} segments of {SEGMENT} frames at {SIZE[0]}x{SIZE[1]}, cuts at "
             f"{', '.join(map(str, concat_cuts))} (jump cuts at {concat_cuts[4]} and {concat_cuts[10]}); "
             f"sintel: sintel_trailer_a and _b whole (312 and 340 frames, 848x480), 6 cuts marked by eye. "
             f"A detection within +-1 frame of a true cut is correct; * = the detector's default threshold."
             + (f" Exposure flicker: each frame's gain within 1 +- {args.flicker:g}." if args.flicker else ""))
    data = {"thresholds": {str(t): r for t, r in results.items()}, "flicker": args.flicker,
            "truth": {n: cuts for n, (_, cuts) in films.items()}, "segments": SEGMENTS}
    common.report("Shot detection", text, data, args)


if __name__ == "__main__":
    main()
