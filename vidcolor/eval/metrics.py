"""Quality measures for colorization: small pure functions plus streaming accumulators.

Conventions. RGB images are uint8 arrays ``(H, W, 3)`` (or batches ``(B, H, W, 3)``)
unless a function says otherwise. CIE Lab and ab arrays are channel-first like the rest of
vidcolor: Lab ``(..., 3, H, W)``, ab ``(..., 2, H, W)``, numpy or torch, in Lab units (L in
[0, 100], a and b roughly in [-110, 110]). Every function returns plain Python floats.

Image measures (against the original, the "ground truth"):

- :func:`psnr`: ``20 log10(255 / RMSE)`` over all uint8 RGB values, in dB; [0, inf), inf for
  identical images. Higher is better.
- :func:`ssim`: mean of kornia's SSIM map (Gaussian window of 11 taps, sigma 1.5, reflect
  padding, RGB in [0, 1], c1 = 0.01^2, c2 = 0.03^2); [-1, 1], 1 for identical images.
- :func:`mean_ab_error`: mean over pixels of the Euclidean distance in the ab plane,
  ``|ab_out - ab_gt|_2``; [0, ~310], 0 is perfect. Lower is better.
- :func:`auc_ab`: the area under the cumulative curve of the per-pixel ab error ("AuC CMF",
  Zhang, Isola and Efros 2016, after Deshpande et al. 2015): the share of pixels whose ab
  error is within a threshold ``t``, integrated over ``t`` in [0, 150] and divided by 150;
  [0, 1], 1 is perfect. The integral is taken exactly (continuous thresholds): a pixel with
  error ``e`` contributes ``max(0, 1 - e / 150)``. The class-rebalanced variant weights each
  pixel by ``1 / p(q)``, the inverse of the empirical frequency of its ground-truth ab bin
  ``q`` (nearest centre of a grid of step 10 over ab, 23 x 23 bins over [-110, 110]), which
  is the paper's Equation 6 with lambda = 0. Unlike the paper (the ImageNet prior, smoothed
  with a Gaussian of sigma 5), the prior ``p`` is estimated, unsmoothed, from the ground
  truth of the evaluated data itself; with that prior every occupied bin counts equally,
  so the figure is the mean, over the ground-truth bins present, of each bin's AuC.
- :func:`colourfulness`: Hasler and Suesstrunk 2003 on SIGNED opponent values (some public
  code takes absolute values of rg and yb first; we do not): ``rg = R - G``,
  ``yb = (R + G) / 2 - B`` with R, G, B in [0, 255], ``M = sqrt(std_rg^2 + std_yb^2) + 0.3
  sqrt(mean_rg^2 + mean_yb^2)`` (population standard deviations); >= 0, 0 for a grey
  image; on their scale about 15 is "slightly", 33 "moderately", 59 "quite", 82 "highly"
  and 109 "extremely" colourful. Compared between the output and the original.

Video measures (Lai et al. 2018; Liu et al. 2021), lower is better:

- :func:`warp_error`: ``E_t = sum_i M_t(i) |V_t(i) - W(V_t+1)(i)|^2 / sum_i M_t(i)``, with
  ``V`` in RGB [0, 1] (the squared norm sums the three channels), ``W`` the backward warp of
  frame t+1 with the forward flow ``w`` (t -> t+1, computed on the ORIGINAL colour frames,
  OpenCV DIS "medium" preset on their grey levels, see :func:`optical_flow`) by bilinear
  ``cv2.remap``, ``M_t = 0`` where a pixel is occluded: ``|w + w'|^2 > 0.01 (|w|^2 +
  |w'|^2) + 0.5`` (``w'`` the backward flow t+1 -> t warped to t with ``w``) or on a motion
  boundary ``|grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002`` (forward differences of the
  forward flow ``w = (u, v)``). Averaged over t. [0, 3]. A classical flow makes the figures
  comparable only side by side, not with published FlowNet2 figures.
- :func:`cdc`: colour distribution consistency. Per frame and RGB channel a 256-bin
  histogram divided by the pixel count; the Jensen-Shannon divergence (natural log, so in
  [0, ln 2]) between frames t and t+d; ``CDC_d`` = mean over t; per channel the mean over d
  in {1, 2, 4} (the distances the clip is long enough for); the figure is the mean over the
  three channels.

:class:`VideoScorer` computes both video measures as frames stream in (it keeps one previous
frame and four histograms), so a whole film is never held in memory; :class:`AbScorer`
does the same for the ab error and both AuC figures.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import kornia
import numpy as np
import torch

from vidcolor.ops.color import colourfulness, rgb_to_lab  # noqa: F401  (colourfulness: one of the measures)
from vidcolor.ops.flow import flow_grey, occlusion_mask, optical_flow, pixel_grid
from vidcolor.ops.quantize import METRIC_BINS, grid_bins

AUC_MAX_THRESHOLD = 150.0
CDC_DISTANCES = (1, 2, 4)
SSIM_WINDOW = 11

def _tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


# -- image measures -----------------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 RGB images of the same shape: ``20 log10(255 / RMSE)``;
    ``inf`` when they are identical."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 20.0 * math.log10(255.0 / math.sqrt(mse))


def rgb_tensor(rgb, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 RGB ``(H, W, 3)`` or ``(B, H, W, 3)`` (numpy or torch) -> float ``(B, 3, H, W)``
    in [0, 1]."""
    t = _tensor(rgb)
    if device is not None:
        t = t.to(device)
    if t.ndim == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).float() / 255.0


def ssim(a, b, device: torch.device | str | None = None) -> float:
    """Mean SSIM of two uint8 RGB images (or batches of them), ``kornia.metrics.ssim`` with
    an 11-tap Gaussian window on RGB in [0, 1]; 1 for identical images."""
    x, y = rgb_tensor(a, device), rgb_tensor(b, device)
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ {tuple(x.shape)} vs {tuple(y.shape)}")
    with torch.no_grad():
        return float(kornia.metrics.ssim(x, y, SSIM_WINDOW, max_val=1.0).mean())


def lab_of(rgb, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 RGB ``(H, W, 3)`` or ``(B, H, W, 3)`` -> CIE Lab ``(B, 3, H, W)`` (D65, sRGB)."""
    with torch.no_grad():
        return rgb_to_lab(rgb_tensor(rgb, device))


def _ab(lab) -> torch.Tensor:
    """Lab ``(..., 3, H, W)`` -> ab ``(..., 2, H, W)``; ab passes through."""
    t = _tensor(lab).float()
    if t.shape[-3] == 3:
        return t[..., 1:, :, :]
    if t.shape[-3] == 2:
        return t
    raise ValueError(f"expected Lab (..., 3, H, W) or ab (..., 2, H, W), got {tuple(t.shape)}")


def ab_distance(ab_a, ab_b) -> torch.Tensor:
    """Per-pixel Euclidean distance in the ab plane, ``(..., H, W)``."""
    a = _ab(ab_a)
    b = _ab(ab_b).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f"ab shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    return torch.linalg.vector_norm(a - b, dim=-3)


def mean_ab_error(lab_a, lab_b) -> float:
    """Mean Euclidean distance in ab between two Lab images ``(..., 3, H, W)`` (ab-only
    ``(..., 2, H, W)`` inputs are accepted too), in Lab units."""
    return float(ab_distance(lab_a, lab_b).double().mean())


def ab_bins(lab) -> torch.Tensor:
    """The metric grid's cell (``quantize.grid_bins``) of each pixel of Lab or ab."""
    return grid_bins(_ab(lab))


def ab_prior(gt_ab) -> np.ndarray:
    """Empirical frequency ``p(q)`` of each of the 529 ab bins in ground-truth ab (sums to 1)."""
    counts = torch.bincount(ab_bins(gt_ab).flatten().cpu(), minlength=METRIC_BINS).double().numpy()
    return counts / max(1.0, counts.sum())


def rebalance_weights(gt_ab, prior: np.ndarray | None = None) -> torch.Tensor:
    """Per-pixel weights ``1 / p(q)`` with ``q`` the ground-truth pixel's ab bin and ``p``
    the prior (estimated from ``gt_ab`` itself when not given), shape ``(..., H, W)``."""
    p = ab_prior(gt_ab) if prior is None else np.asarray(prior, dtype=np.float64)
    bins = ab_bins(gt_ab)
    table = torch.from_numpy(np.where(p > 0, 1.0 / np.maximum(p, 1e-300), 0.0)).to(bins.device)
    return table[bins]


def auc_scores(out_ab, gt_ab, max_threshold: float = AUC_MAX_THRESHOLD) -> torch.Tensor:
    """Each pixel's share of the AuC: ``max(0, 1 - e / max_threshold)``, ``e`` its ab error
    (the exact area under its step ``1[e <= t]`` for t in [0, max_threshold], normalised)."""
    return (1.0 - ab_distance(out_ab, gt_ab).double() / max_threshold).clamp(0.0, 1.0)


def auc_ab(out_ab, gt_ab, max_threshold: float = AUC_MAX_THRESHOLD, weights=None) -> float:
    """Area under the cumulative curve of the per-pixel ab error for thresholds
    0..``max_threshold``, normalised to [0, 1] (1: every pixel exact).

    ``weights``: None (plain: every pixel counts the same), ``"rebalanced"`` (each pixel
    weighted by the inverse frequency of its ground-truth ab bin, the prior estimated from
    ``gt_ab`` itself), or per-pixel weights of shape ``(..., H, W)``. Lab inputs are
    accepted (their ab is used)."""
    scores = auc_scores(out_ab, gt_ab, max_threshold)
    if weights is None:
        return float(scores.mean())
    if isinstance(weights, str):
        if weights != "rebalanced":
            raise ValueError(f"weights: None, 'rebalanced' or an array, not {weights!r}")
        weights = rebalance_weights(gt_ab)
    w = _tensor(weights).double().to(scores.device)
    return float((w * scores).sum() / w.sum())


class AbScorer:
    """Streaming mean ab error and AuC (plain and rebalanced) over many frames or images.

    Per ground-truth ab bin it keeps the pixel count and the sum of the pixels' AuC shares
    (:func:`auc_scores`), so the rebalanced figure can use a prior known only at the end
    (that of the whole evaluated data set: pass the sum of every scorer's ``counts``)."""

    def __init__(self, max_threshold: float = AUC_MAX_THRESHOLD):
        self.max_threshold = max_threshold
        self.counts = np.zeros(METRIC_BINS, np.float64)
        self.score_sums = np.zeros(METRIC_BINS, np.float64)
        self.error_sum = 0.0

    def update(self, out_lab, gt_lab) -> None:
        distance = ab_distance(out_lab, gt_lab).double()
        scores = (1.0 - distance / self.max_threshold).clamp(0.0, 1.0)
        bins = ab_bins(gt_lab).flatten()
        self.counts += torch.bincount(bins, minlength=METRIC_BINS).double().cpu().numpy()
        self.score_sums += torch.bincount(bins, weights=scores.flatten(), minlength=METRIC_BINS).cpu().numpy()
        self.error_sum += float(distance.sum())

    @property
    def pixels(self) -> float:
        return float(self.counts.sum())

    def mean_ab_error(self) -> float:
        return self.error_sum / self.pixels if self.pixels else math.nan

    def auc(self) -> float:
        return float(self.score_sums.sum() / self.pixels) if self.pixels else math.nan

    def auc_rebalanced(self, prior: np.ndarray | None = None) -> float:
        """Rebalanced AuC with ``prior`` (bin frequencies or counts; this scorer's own
        ground truth when None). Every bin present here must have a non-zero prior."""
        p = self.counts if prior is None else np.asarray(prior, np.float64)
        present = self.counts > 0
        if not present.any():
            return math.nan
        if (p[present] <= 0).any():
            raise ValueError("the prior must cover every ground-truth bin that occurs")
        w = 1.0 / p[present]
        return float((w * self.score_sums[present]).sum() / (w * self.counts[present]).sum())




# -- optical flow and warp error ------------------------------------------------------------


def _unit_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return frame.astype(np.float32)


@dataclass
class FlowPair:
    """The flows between two consecutive original frames, with what the warp error needs
    (the remap grid and the valid mask) computed once and shared by every method scored."""

    forward: np.ndarray  # t -> t+1
    backward: np.ndarray  # t+1 -> t
    valid: np.ndarray = field(init=False)  # M_t: True where not occluded

    def __post_init__(self) -> None:
        self.valid = ~occlusion_mask(self.forward, self.backward)
        h, w = self.forward.shape[:2]
        xs, ys = pixel_grid(h, w)
        self._map_x = xs + self.forward[..., 0]
        self._map_y = ys + self.forward[..., 1]

    def warp(self, image: np.ndarray) -> np.ndarray:
        return cv2.remap(np.ascontiguousarray(image), self._map_x, self._map_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def error(self, frame_t: np.ndarray, frame_next: np.ndarray) -> float:
        """``E_t`` of two output frames (uint8 RGB, or float RGB in [0, 1]); NaN when
        every pixel is masked."""
        v_t, v_next = _unit_rgb(frame_t), _unit_rgb(frame_next)
        diff = ((v_t - self.warp(v_next)) ** 2).sum(-1)
        n = int(self.valid.sum())
        return float(diff[self.valid].astype(np.float64).sum() / n) if n else math.nan


def flow_pair(prev_grey: np.ndarray, next_grey: np.ndarray) -> FlowPair:
    """Forward and backward DIS flow between two original frames (grey or RGB)."""
    a, b = flow_grey(prev_grey), flow_grey(next_grey)
    return FlowPair(optical_flow(a, b), optical_flow(b, a))


def warp_error(frames_out: Sequence[np.ndarray], flow_fw: Sequence[np.ndarray], flow_bw: Sequence[np.ndarray]) -> float:
    """Lai et al. 2018 warp error of output frames ``V_0..V_T-1`` (uint8 RGB, or floats in
    [0, 1]) given ``flow_fw[t]`` (t -> t+1) and ``flow_bw[t]`` (t+1 -> t) computed on the
    original frames: the mean over t of ``E_t`` (pairs with every pixel masked are skipped)."""
    if len(flow_fw) != len(frames_out) - 1 or len(flow_bw) != len(flow_fw):
        raise ValueError("warp_error: give T frames and T-1 forward and backward flows")
    errors = [FlowPair(fw, bw).error(a, b) for a, b, fw, bw in zip(frames_out[:-1], frames_out[1:], flow_fw, flow_bw)]
    errors = [e for e in errors if not math.isnan(e)]
    return float(np.mean(errors)) if errors else math.nan


# -- colour distribution consistency -----------------------------------------------------


def channel_histograms(rgb: np.ndarray) -> np.ndarray:
    """Per-channel 256-bin histograms of a uint8 image ``(H, W, C)`` divided by the pixel
    count -> ``(C, 256)`` (each row sums to 1)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ValueError("channel_histograms: uint8 images only")
    pixels = rgb.shape[0] * rgb.shape[1]
    return np.stack([np.bincount(rgb[..., c].ravel(), minlength=256) / pixels for c in range(rgb.shape[-1])])


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) along the last axis; in [0, ln 2]."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = 0.5 * (p + q)

    def kl(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(x > 0, x * np.log(x / np.where(m > 0, m, 1.0)), 0.0)
        return terms.sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class VideoScorer:
    """Warp error and CDC of a stream of output frames, fed one at a time.

    ``update(original_rgb, output_rgb)`` with the original colour frame (for the flow) and
    the output frame; ``flow`` may be given (a :class:`FlowPair` between the previous and
    this original frame, or None for the first frame) so several methods share one flow
    computation (see :class:`FlowTracker`). Keeps the previous frames only: one output
    frame, one grey original and the histograms of the last four outputs."""

    _NOT_GIVEN = object()

    def __init__(self, distances: Sequence[int] = CDC_DISTANCES):
        self.distances = tuple(distances)
        self.frames = 0
        self._previous: np.ndarray | None = None
        self._flows = FlowTracker()
        self._histograms: deque = deque(maxlen=max(self.distances))
        self._js_sum = np.zeros((len(self.distances), 3), np.float64)
        self._js_count = np.zeros(len(self.distances), np.int64)
        self._warp_errors: list[float] = []

    def update(self, original_rgb: np.ndarray | None, output_rgb: np.ndarray, flow=_NOT_GIVEN) -> None:
        output_rgb = np.asarray(output_rgb)
        if flow is VideoScorer._NOT_GIVEN:
            if original_rgb is None:
                raise ValueError("VideoScorer.update: give the original frame or its flow")
            flow = self._flows.push(original_rgb)
        if self._previous is not None and flow is not None:
            error = flow.error(self._previous, output_rgb)
            if not math.isnan(error):
                self._warp_errors.append(error)
        self._previous = output_rgb
        hist = channel_histograms(output_rgb)
        for k, d in enumerate(self.distances):
            if len(self._histograms) >= d:
                self._js_sum[k] += js_divergence(self._histograms[-d], hist)
                self._js_count[k] += 1
        self._histograms.append(hist)
        self.frames += 1

    def warp_error(self) -> float:
        """Mean of ``E_t`` over the frame pairs seen (NaN with fewer than two frames)."""
        return float(np.mean(self._warp_errors)) if self._warp_errors else math.nan

    def cdc_per_channel(self) -> np.ndarray:
        """Per channel (R, G, B): the mean over d of ``CDC_d``; NaN with one frame."""
        used = self._js_count > 0
        if not used.any():
            return np.full(3, math.nan)
        return (self._js_sum[used] / self._js_count[used, None]).mean(0)

    def cdc(self) -> float:
        return float(self.cdc_per_channel().mean())

    def result(self) -> dict:
        return {"warp_error": self.warp_error(), "cdc": self.cdc(), "frames": self.frames}


class FlowTracker:
    """Flows between consecutive original frames, fed one at a time: ``push(rgb)`` returns
    the :class:`FlowPair` from the previous frame to this one (None for the first)."""

    def __init__(self):
        self._previous: np.ndarray | None = None

    def push(self, original_rgb: np.ndarray) -> FlowPair | None:
        grey = flow_grey(original_rgb)
        pair = flow_pair(self._previous, grey) if self._previous is not None else None
        self._previous = grey
        return pair


def cdc(frames: Sequence[np.ndarray], distances: Sequence[int] = CDC_DISTANCES) -> float:
    """CDC of a clip of uint8 RGB frames (Liu et al. 2021): per channel the mean over d of
    the mean over t of ``JS(h_t, h_t+d)``, then the mean over channels. Lower is better."""
    scorer = VideoScorer(distances)
    for frame in frames:
        scorer.update(None, frame, flow=None)
    return scorer.cdc()
