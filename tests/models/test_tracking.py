"""Film speed: the frames of a shot are matched by following the previous frame's match
(``Tracker``), as well as by a full search; the first frame of a shot, and a frame whose
match falls apart, are searched in full."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import scene
from vidcolor.eval.metrics import psnr
from vidcolor.film.engine import Engine
from vidcolor.ops import color


def panning(seed: int, frames: int, step: tuple[int, int] = (1, 2)) -> list[np.ndarray]:
    big = scene(seed, 400)
    return [big[40 + step[0] * i : 168 + step[0] * i, 30 + step[1] * i : 254 + step[1] * i] for i in range(frames)]


def colour(engine: Engine, frames: list[np.ndarray], reference: np.ndarray, batch: int = 4) -> list[np.ndarray]:
    prepared = engine.prepare(reference)
    greys = [color.rgb_to_grey_levels(f) for f in frames]
    out = []
    for i in range(0, len(greys), batch):
        out += list(engine.colorize(greys[i : i + batch], prepared, sequence=True))
    return out


def test_tracked_frames_are_as_good_as_searched_ones():
    frames = panning(3, 8)
    searched = Engine("exemplar", device="cpu", work_res=128, smooth=False)
    searched.colorizer.tracker = None
    tracked = Engine("exemplar", device="cpu", work_res=128, smooth=False)
    full = colour(searched, frames, frames[0])
    fast = colour(tracked, frames, frames[0])
    assert np.array_equal(full[0], fast[0])  # the shot's first frame is searched in full
    gaps = [psnr(a, f) - psnr(b, f) for a, b, f in zip(full, fast, frames)]
    assert max(gaps) < 0.4 and float(np.mean(gaps)) < 0.2, gaps
    assert not all(np.array_equal(a, b) for a, b in zip(full, fast))  # the later ones were tracked


def test_a_cut_or_another_reference_starts_afresh():
    frames = panning(3, 4)
    other = panning(7, 4)
    engine = Engine("exemplar", device="cpu", work_res=128, smooth=False)
    fresh = Engine("exemplar", device="cpu", work_res=128, smooth=False)
    colour(engine, frames, frames[0])
    engine.new_shot()  # a cut: the next frame is searched in full, as by a fresh engine
    assert np.array_equal(colour(engine, other[:1], other[0])[0], colour(fresh, other[:1], other[0])[0])
    fresh.new_shot()
    colour(engine, other[1:3], other[0])
    after = colour(engine, other[3:], frames[0])[0]  # another reference, same shot
    fresh.new_shot()
    assert np.array_equal(after, colour(fresh, other[3:], frames[0])[0])


def test_a_frame_that_no_longer_matches_is_searched_again():
    frames = panning(3, 3)
    engine = Engine("exemplar", device="cpu", work_res=128, smooth=False)
    fresh = Engine("exemplar", device="cpu", work_res=128, smooth=False)
    colour(engine, frames, frames[0])
    jump = np.ascontiguousarray(scene(3, 400)[250:378, 150:374])  # same reference, far away: no flow can carry it
    assert np.array_equal(colour(engine, [jump], frames[0])[0], colour(fresh, [jump], frames[0])[0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tracking_on_cuda_agrees_with_the_cpu():
    frames = panning(3, 8)
    out = {}
    for device in ("cpu", "cuda"):
        engine = Engine("exemplar", device=device, work_res=128, smooth=False)
        out[device] = colour(engine, frames, frames[0])
    assert min(psnr(a, b) for a, b in zip(out["cpu"], out["cuda"])) > 35.0  # bf16 on the GPU
