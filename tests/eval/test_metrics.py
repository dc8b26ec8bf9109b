"""The quality measures of vidcolor.eval.metrics on synthetic cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidcolor.eval import metrics as M
from vidcolor.ops import flow
from vidcolor.ops.quantize import METRIC_SIDE


def moving_scene(i: int, width: int = 96, height: int = 64, speed: int = 2) -> np.ndarray:
    """Colour frame ``i`` of a smooth, textured pattern translating ``speed`` px/frame to the
    right: real, known motion for the optical flow."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    xs = x - speed * i
    r = 128 + 90 * np.sin(xs / 6.0)
    g = 128 + 90 * np.cos(y / 5.0 + xs / 9.0)
    b = 128 + 90 * np.sin((xs + y) / 7.0)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def flows_of(frames):
    fw = [flow.optical_flow(a, b) for a, b in zip(frames[:-1], frames[1:])]
    bw = [flow.optical_flow(b, a) for a, b in zip(frames[:-1], frames[1:])]
    return fw, bw


def random_rgb(seed: int = 0, shape=(32, 48, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# -- PSNR and SSIM ------------------------------------------------------------------------


def test_psnr_identical_is_infinite_and_known_offset():
    a = random_rgb()
    assert M.psnr(a, a.copy()) == math.inf
    a = np.clip(a, 0, 254)  # every value differs by exactly 1: RMSE 1
    b = a + 1
    assert M.psnr(a, b) == pytest.approx(20 * math.log10(255.0))


def test_ssim_identical_is_one_and_noise_lowers_it():
    a = moving_scene(0)
    assert M.ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-6)
    noisy = np.clip(a.astype(int) + np.random.default_rng(2).integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    assert M.ssim(a, noisy) < 0.8
    batch = np.stack([a, a])
    assert M.ssim(batch, batch) == pytest.approx(1.0, abs=1e-6)


# -- ab error and AuC ---------------------------------------------------------------------------


def test_constant_ab_shift_gives_its_length_as_mean_ab_error():
    lab = M.lab_of(random_rgb(3))
    shifted = lab + torch.tensor([0.0, 3.0, 4.0]).view(1, 3, 1, 1)
    assert M.mean_ab_error(shifted, lab) == pytest.approx(5.0, abs=1e-5)
    assert M.mean_ab_error(shifted.numpy(), lab.numpy()) == pytest.approx(5.0, abs=1e-5)
    assert M.mean_ab_error(lab, lab) == 0.0


def test_auc_of_a_perfect_output_is_one_plain_and_rebalanced():
    lab = M.lab_of(random_rgb(4))
    assert M.auc_ab(lab, lab) == pytest.approx(1.0)
    assert M.auc_ab(lab, lab, weights="rebalanced") == pytest.approx(1.0)


def test_auc_of_a_constant_error_is_one_minus_error_over_150():
    gt = torch.zeros(1, 2, 8, 8)
    out = gt.clone()
    out[:, 0] = 30.0
    assert M.auc_ab(out, gt) == pytest.approx(1 - 30 / 150)
    out[:, 0] = 200.0
    assert M.auc_ab(out, gt) == pytest.approx(0.0)


def test_rebalanced_auc_counts_every_ground_truth_bin_equally():
    # 90 pixels of grey (bin (0, 0)) predicted exactly, 10 pixels of a = 60 predicted
    # with an error of 75: plain AuC (90 * 1 + 10 * 0.5) / 100, rebalanced (1 + 0.5) / 2.
    gt = torch.zeros(1, 2, 10, 10)
    gt[0, 0, 9, :] = 60.0
    out = gt.clone()
    out[0, 0, 9, :] = 60.0 + 75.0
    assert M.auc_ab(out, gt) == pytest.approx(0.95)
    assert M.auc_ab(out, gt, weights="rebalanced") == pytest.approx(0.75)
    weights = M.rebalance_weights(gt)
    assert float(weights[0, 0, 0]) == pytest.approx(1 / 0.9) and float(weights[0, 9, 0]) == pytest.approx(1 / 0.1)
    scorer = M.AbScorer()
    scorer.update(out[:, :, :5], gt[:, :, :5])  # streaming, in two parts
    scorer.update(out[:, :, 5:], gt[:, :, 5:])
    assert scorer.auc() == pytest.approx(0.95)
    assert scorer.auc_rebalanced() == pytest.approx(0.75)
    assert scorer.mean_ab_error() == pytest.approx(7.5)


def test_ab_bins_use_the_nearest_centre_of_a_grid_of_10():
    ab = torch.tensor([[[-110.0, 4.9, 5.1, 200.0]], [[0.0, 0.0, -14.0, -200.0]]])  # (2, 1, 4)
    bins = M.ab_bins(ab)[0].tolist()
    side = METRIC_SIDE
    assert bins == [0 * side + 11, 11 * side + 11, 12 * side + 10, 22 * side + 0]
    assert M.ab_prior(ab).sum() == pytest.approx(1.0)


# -- colourfulness ----------------------------------------------------------------------------


def test_colourfulness_of_grey_is_zero():
    grey = np.repeat(random_rgb(5, (16, 16, 1)), 3, axis=2)
    assert M.colourfulness(grey) == 0.0


def test_colourfulness_of_a_tiny_image_by_hand():
    # Pixels pure red and pure blue: rg = (255, 0), yb = (127.5, -255).
    image = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    std_rg, std_yb = 127.5, 191.25
    mean_rg, mean_yb = 127.5, -63.75
    expected = math.sqrt(std_rg**2 + std_yb**2) + 0.3 * math.sqrt(mean_rg**2 + mean_yb**2)
    assert M.colourfulness(image) == pytest.approx(expected)
    # Signed values: a uniform yellow has zero spread and only the mean term.
    yellow = np.full((4, 4, 3), (200, 200, 0), np.uint8)
    assert M.colourfulness(yellow) == pytest.approx(0.3 * 200.0)


# -- warp error and CDC ---------------------------------------------------------------------


def test_identical_frames_have_zero_warp_error():
    frame = moving_scene(0)
    frames = [frame] * 4
    fw, bw = flows_of(frames)
    assert M.warp_error(frames, fw, bw) == 0.0
    zero = [np.zeros(frame.shape[:2] + (2,), np.float32)] * 3
    assert M.warp_error(frames, zero, zero) == 0.0
    # A uniform output warps onto itself whatever the (real) motion.
    moving = [moving_scene(i) for i in range(4)]
    fw, bw = flows_of(moving)
    uniform = [np.full_like(frame, 90)] * 4
    assert M.warp_error(uniform, fw, bw) == pytest.approx(0.0, abs=1e-12)


def test_flow_follows_the_motion_and_the_original_warps_onto_itself():
    frames = [moving_scene(i) for i in range(6)]
    fw, bw = flows_of(frames)
    assert float(np.median(fw[0][..., 0])) == pytest.approx(2.0, abs=0.2)
    assert float(np.median(bw[0][..., 0])) == pytest.approx(-2.0, abs=0.2)
    assert M.FlowPair(fw[0], bw[0]).valid.mean() > 0.8
    assert M.warp_error(frames, fw, bw) < 1e-4


def test_occlusion_mask_flags_inconsistent_flow_and_motion_boundaries():
    h, w = 20, 30
    zero = np.zeros((h, w, 2), np.float32)
    assert not flow.occlusion_mask(zero, zero).any()
    fw = zero.copy()
    fw[:, :, 0] = 3.0  # forward says +3 px, backward says 0: inconsistent everywhere
    assert flow.occlusion_mask(fw, zero).all()
    step = zero.copy()
    step[:, 15:, 0] = 3.0
    back = zero.copy()
    back[:, 18:, 0] = -3.0  # consistent on both sides of the step
    mask = flow.occlusion_mask(step, back)
    assert mask[:, 14].all()  # the motion boundary
    assert not mask[:, :12].any() and not mask[:, 20:-4].any()


def test_flicker_raises_cdc_and_warp_error():
    clean = [moving_scene(i) for i in range(10)]
    rng = np.random.default_rng(0)
    offsets = rng.integers(-25, 26, (len(clean), 3))
    flicker = [np.clip(f.astype(int) + o, 0, 255).astype(np.uint8) for f, o in zip(clean, offsets)]
    fw, bw = flows_of(clean)  # the flow of the ORIGINAL frames scores both
    assert M.warp_error(flicker, fw, bw) > 10 * M.warp_error(clean, fw, bw)
    assert M.warp_error(flicker, fw, bw) > 1e-3
    assert M.cdc(flicker) > 5 * M.cdc(clean)


def test_cdc_is_zero_for_a_still_clip_and_uses_d_1_2_4():
    still = [random_rgb(6)] * 6
    assert M.cdc(still) == 0.0
    a, b = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    # Alternating black and white: JS = ln 2 at d = 1, 0 at d = 2 and d = 4.
    assert M.cdc([a, b, a, b, a, b]) == pytest.approx(math.log(2) / 3)
    # Too short for d = 4: the mean over the distances the clip has.
    assert M.cdc([a, b, a]) == pytest.approx(math.log(2) / 2)


def test_js_divergence_bounds():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([0.0, 0.0, 0.5, 0.5])
    assert M.js_divergence(p, p) == 0.0
    assert M.js_divergence(p, q) == pytest.approx(math.log(2))


def test_video_scorer_streams_the_same_figures_as_the_whole_clip():
    originals = [moving_scene(i) for i in range(8)]
    rng = np.random.default_rng(1)
    outputs = [np.clip(f.astype(int) + rng.integers(-10, 11, 3), 0, 255).astype(np.uint8) for f in originals]
    fw, bw = flows_of(originals)
    scorer = M.VideoScorer()
    for original, output in zip(originals, outputs):
        scorer.update(original, output)
    result = scorer.result()
    assert result["frames"] == 8
    assert result["warp_error"] == pytest.approx(M.warp_error(outputs, fw, bw))
    assert result["cdc"] == pytest.approx(M.cdc(outputs))
    assert len(scorer._histograms) <= 4  # only the last few frames are kept
