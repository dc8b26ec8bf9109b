"""The temporal smoothing stage: flicker goes, real colour changes and cuts are kept."""

from __future__ import annotations

import numpy as np
import torch

from conftest import assert_clean_error, colour_reference, moving_colour, run_cli, write_clip
from vidcolor.ops import color
from vidcolor.film.engine import Engine
from vidcolor.eval.metrics import flow_pair
from vidcolor.film.temporal import TemporalSmoother

W, H = 96, 64


def lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` -> Lab ``(H, W, 3)`` float32."""
    return color.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0].permute(1, 2, 0).numpy()


def compose(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    image = torch.from_numpy(np.concatenate([lightness[..., None], ab], -1)).permute(2, 0, 1)[None]
    return (color.lab_to_rgb(image)[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def warp_error(frames: list[np.ndarray], pairs) -> float:
    return float(np.nanmean([p.error(a, b) for p, a, b in zip(pairs, frames[:-1], frames[1:])]))


def test_flicker_is_removed_and_the_colours_stay_true():
    """Per-frame colorization = the true ab plus a random global offset each frame (the
    flicker of per-frame networks): after smoothing the warp error (flow on the originals)
    falls by far more than 30 %, and the colours are as close to the truth as before."""
    rng = np.random.default_rng(0)
    originals = [moving_colour(i, W, H) for i in range(16)]
    labs = [lab(f) for f in originals]
    greys = [color.rgb_to_grey_levels(f) for f in originals]
    smoother = TemporalSmoother()
    flickering, smoothed, errors = [], [], {"flickering": [], "smoothed": []}
    for lab_t, grey in zip(labs, greys):
        ab = lab_t[..., 1:] + rng.normal(0, 6, 2).astype(np.float32)
        out = smoother(grey, ab)
        flickering.append(compose(lab_t[..., 0], ab))
        smoothed.append(compose(lab_t[..., 0], out))
        errors["flickering"].append(np.abs(ab - lab_t[..., 1:]).mean())
        errors["smoothed"].append(np.abs(out - lab_t[..., 1:]).mean())
    pairs = [flow_pair(a, b) for a, b in zip(originals[:-1], originals[1:])]
    before, after = warp_error(flickering, pairs), warp_error(smoothed, pairs)
    assert after < 0.5 * before, (before, after)
    assert np.mean(errors["smoothed"]) < np.mean(errors["flickering"]) * 1.1
    assert smoother.restarts == 0


def test_a_real_change_of_colour_is_followed_at_once():
    grey = np.full((H, W), 120, np.uint8)
    smoother = TemporalSmoother()
    red, blue = np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32)
    red[..., 0], blue[..., 0] = 40.0, -40.0
    for _ in range(4):
        smoother(grey, red)
    out = smoother(grey, blue)
    assert np.abs(out - blue).max() < 0.5  # the two colours disagree: the frame's own wins


def test_a_cut_starts_afresh_and_a_new_shot_forgets():
    smoother = TemporalSmoother()
    first = [moving_colour(i, W, H) for i in range(4)]
    for f in first:
        smoother(color.rgb_to_grey_levels(f), lab(f)[..., 1:])
    other = np.ascontiguousarray(colour_reference(W, H)[::-1, ::-1])  # another picture: nothing can be followed
    own = lab(other)[..., 1:]
    out = smoother(color.rgb_to_grey_levels(other), own)
    assert smoother.restarts == 1 and np.array_equal(out, own)
    smoother.reset()
    grey = color.rgb_to_grey_levels(first[0])
    own = lab(first[0])[..., 1:] + 3.0
    assert np.array_equal(smoother(grey, own), own)  # nothing before the first frame of a shot


def test_engine_smooths_sequences_only_and_reports_the_raw_output():
    greys = [color.rgb_to_grey_levels(moving_colour(i, W, H)) for i in range(6)]
    reference = colour_reference(W, H)
    engine = Engine("transfer", device="cpu", work_res=48, smooth=True)
    prepared = engine.prepare(reference)
    smoothed, raw = engine.colorize(greys[:3], prepared, sequence=True, with_raw=True)
    assert np.array_equal(smoothed[0], raw[0]) and not np.array_equal(smoothed[2], raw[2])
    plain = Engine("transfer", device="cpu", work_res=48)
    assert np.array_equal(plain.colorize(greys[:3], plain.prepare(reference)), raw)
    # photos (not a sequence) are never smoothed
    assert np.array_equal(engine.colorize(greys[3:], prepared), plain.colorize(greys[3:], plain.prepare(reference)))
    engine.new_shot()
    again, raw = engine.colorize(greys[:1], prepared, sequence=True, with_raw=True)
    assert np.array_equal(again, raw)


def test_temporal_option_on_the_command_line(tmp_path, reference):
    clip = write_clip(tmp_path / "grey.mp4", frames=6)
    out = tmp_path / "out.mp4"
    assert run_cli(clip, "-r", reference, "-o", out, "--temporal", "smooth", "--work-res", "48", "-q").code == 0
    assert_clean_error(run_cli(clip, "-r", reference, "-o", tmp_path / "o2.mp4", "--temporal", "jitter"), "--temporal")
